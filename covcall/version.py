"""Which code produced a result: the package version plus the git commit when running from a checkout."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

from covcall import __version__


@lru_cache(maxsize=1)
def code_version() -> str:
    """'0.1.0+g1a2b3c4' (with '.dirty' for uncommitted changes) in a git checkout, else the package version.

    >>> code_version().startswith(__version__)
    True
    """
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return __version__
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}" + (".dirty" if dirty else "")
