"""covcall: research workbench for crypto covered calls (backtests, training examples, LightGBM policies, walks)."""

__version__ = "0.1.0"

from covcall.backtest import BacktestConfig, BacktestResult, run_backtest  # noqa: E402
from covcall.batch import BatchResult, BatchSpec, run_batch  # noqa: E402
from covcall.config import Settings, load_settings, run_defaults  # noqa: E402
from covcall.ranges import Range, RangeSet  # noqa: E402
from covcall.store import DatasetFilter, Store  # noqa: E402
from covcall.walker import WalkResult, load_walk, walk  # noqa: E402


def open_store(settings: Settings | None = None) -> Store:
    """The DuckDB store named by the settings (environment / .env), for notebooks and scripts.

    >>> import os, tempfile
    >>> s = open_store(load_settings(duckdb_path=os.path.join(tempfile.mkdtemp(), "n.duckdb")))
    >>> s.counts()["runs"]
    0
    """
    settings = settings or load_settings()
    return Store(settings.duckdb_path, settings.store_timeout_s)


__all__ = [
    "BacktestConfig", "BacktestResult", "run_backtest", "BatchSpec", "BatchResult", "run_batch", "Settings",
    "load_settings", "run_defaults", "Range", "RangeSet", "Store", "DatasetFilter", "WalkResult", "walk", "load_walk", "open_store",
    "__version__",
]
