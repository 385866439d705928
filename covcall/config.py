"""Settings read once at the edge (environment and .env) and passed explicitly to the core."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from covcall.errors import ConfigError

DataSource = Literal["synthetic", "store", "ccxt"]


class Settings(BaseSettings):
    """Every knob a user may set from the environment or a `.env` file (see `.env.example`)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", allow_inf_nan=False)

    save_training_data: bool = Field(
        default=False, description="Write every backtest's and batch's training examples as CSV + JSONL."
    )
    training_data_dir: Path = Field(default=Path("data"), description="Folder for exported datasets.")
    duckdb_path: Path = Field(default=Path("data/covcall.duckdb"), description="The one DuckDB file.")
    data_source: DataSource = Field(default="synthetic", description="Default market data source.")
    exchange_id: str = Field(default="binance", description="ccxt exchange id for `fetch`.")
    synthetic_seed: int = Field(default=7, ge=0, le=2**32 - 1, description="Seed of the synthetic market.")
    fee_rate: float = Field(default=0.0003, ge=0, le=0.01, description="Trade fee, fraction of underlying.")
    fee_cap: float = Field(default=0.125, ge=0, le=1, description="Fee cap, fraction of the option price.")
    settlement_fee_rate: float = Field(default=0.00015, ge=0, le=0.01, description="Settlement fee.")
    risk_free_rate: float = Field(default=0.0, ge=-0.1, le=0.5, description="Annual rate for pricing.")
    store_timeout_s: float = Field(default=30.0, gt=0, le=86400, description="How long to wait on a locked DuckDB.")
    compute: Literal["serial", "local"] | None = Field(default=None, description=(
        "serial | local (a Dask LocalCluster); unset: local when there is more than one unit and one core."))
    workers: int | None = Field(default=None, ge=1, le=1024, description="Local cluster size (default: the cores).")
    dask_scheduler_address: str | None = Field(default=None, description=(
        "An existing Dask scheduler (tcp://HOST:PORT); when set, sweeps run there."))


_ACCEPTS = {
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "literal_error": None,
    "float_parsing": "a number",
    "int_parsing": "a whole number",
}


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "setting"
    accepts = _ACCEPTS.get(first["type"])
    if accepts is None:
        accepts = first["msg"].replace("Input should be ", "").replace("Value error, ", "")
    return f"invalid setting {field.upper()}={first.get('input')!r}: expected {accepts}"


# BacktestConfig fields whose defaults come from the settings (the one settings path into the core).
RUN_DEFAULT_FIELDS = ("source", "seed", "exchange", "fee_rate", "fee_cap", "settlement_fee_rate", "rate")


def run_defaults(settings: Settings) -> dict[str, Any]:
    """The run defaults the settings imply, as BacktestConfig fields; every entry point (CLI commands, the Python
    API's `open_defaults`, the demo, every page) passes these to the core instead of reading settings itself.

    >>> run_defaults(load_settings(fee_rate=0.0005))["fee_rate"]
    0.0005
    """
    return {"source": settings.data_source, "seed": settings.synthetic_seed, "exchange": settings.exchange_id,
            "fee_rate": settings.fee_rate, "fee_cap": settings.fee_cap,
            "settlement_fee_rate": settings.settlement_fee_rate, "rate": settings.risk_free_rate}


def compute_plan(settings: Settings, n_units: int, workers: int | None = None, scheduler: str | None = None,
                 work_s: float | None = None) -> Any:
    """Where a sweep of `n_units` runs (`work_s`: its estimated seconds on one core): the CLI's
    --workers/--scheduler over the settings (covcall.compute.plan)."""
    from covcall.compute import plan

    return plan(settings.compute, workers if workers is not None else settings.workers,
                scheduler or settings.dask_scheduler_address, n_units=n_units, work_s=work_s)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`; raise ConfigError with one actionable line.

    >>> load_settings(save_training_data=True).save_training_data
    True
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        raise ConfigError(_one_line(err)) from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"the .env file is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    except OSError as err:
        raise ConfigError(f"cannot read the .env file: {err.strerror or err}") from None
