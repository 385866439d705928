"""The reference data (../shared/data) loaded into a store for real-data tests; they skip when it is absent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def reference_store_or_skip(folder: Path):
    if not DATA.is_dir():
        pytest.skip("../shared/data is absent")
    sys.path.insert(0, str(ROOT / "scripts"))
    from calibrate_defaults import reference_store

    return reference_store(DATA, folder)
