"""Reading specification files (JSON or TOML, chosen by extension) into plain dicts with clear errors."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from covcall.errors import SpecError

_FORMATS = (".json", ".toml")


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """Parse a .json or .toml spec file; SpecError names the file and the line of any syntax error.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.toml"
    >>> _ = p.write_text('name = "demo"\\ngap_days = 30\\n')
    >>> read_spec_file(p)
    {'name': 'demo', 'gap_days': 30}
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in _FORMATS:
        raise SpecError(f"spec file {p} must end in .json or .toml; got {suffix or 'no extension'!r}")
    if not p.is_file():
        hint = " (it is a folder)" if p.is_dir() else ""
        raise SpecError(f"spec file {p} not found{hint}; check the path")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"cannot read spec file {p}: {err}") from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"{p}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            msg = str(err)
            m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
            where = f" at line {m.group(1)}, column {m.group(2)}" if m else ""
            detail = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", msg)
            raise SpecError(f"{p}: invalid TOML{where}: {detail}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{p}: the top level must be an object of settings, got {type(data).__name__}")
    return data
