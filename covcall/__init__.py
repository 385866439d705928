"""covcall: research workbench for crypto covered calls (backtests, training examples, LightGBM policies, walks)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public API, loaded on first use (PEP 562) so `covcall --help` does not pay for pandas, DuckDB and the engine.
_EXPORTS: dict[str, str] = {
    "BacktestConfig": "covcall.backtest", "BacktestResult": "covcall.backtest", "run_backtest": "covcall.backtest",
    "settings_of_run": "covcall.backtest",
    "BatchSpec": "covcall.batch", "BatchResult": "covcall.batch", "run_batch": "covcall.batch",
    "Settings": "covcall.config", "load_settings": "covcall.config", "run_defaults": "covcall.config",
    "Range": "covcall.ranges", "RangeSet": "covcall.ranges",
    "Store": "covcall.store", "DatasetFilter": "covcall.store",
    "WalkResult": "covcall.walker", "walk": "covcall.walker", "load_walk": "covcall.walker",
}

if TYPE_CHECKING:
    from covcall.backtest import BacktestConfig, BacktestResult, run_backtest, settings_of_run
    from covcall.batch import BatchResult, BatchSpec, run_batch
    from covcall.config import Settings, load_settings, run_defaults
    from covcall.ranges import Range, RangeSet
    from covcall.store import DatasetFilter, Store
    from covcall.walker import WalkResult, load_walk, walk


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'covcall' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


def open_store(settings: Settings | None = None) -> Store:
    """The DuckDB store named by the settings (environment / .env), for notebooks and scripts.

    >>> import os, tempfile
    >>> from covcall import load_settings
    >>> s = open_store(load_settings(duckdb_path=os.path.join(tempfile.mkdtemp(), "n.duckdb")))
    >>> s.counts()["runs"]
    0
    """
    from covcall.config import load_settings
    from covcall.store import Store

    settings = settings or load_settings()
    return Store(settings.duckdb_path, settings.store_timeout_s)


__all__ = [
    "BacktestConfig", "BacktestResult", "run_backtest", "settings_of_run", "BatchSpec", "BatchResult", "run_batch", "Settings",
    "load_settings", "run_defaults", "Range", "RangeSet", "Store", "DatasetFilter", "WalkResult", "walk", "load_walk",
    "open_store", "__version__",
]
