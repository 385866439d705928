"""User-facing error types: every message says what went wrong and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CovcallError(Exception):
    """An error caused by user input or environment; the CLI prints it as one line and exits 2."""


class ConfigError(CovcallError):
    """A setting (environment, .env or explicit argument) has an invalid value."""


class DataError(CovcallError):
    """Market data is missing, malformed or does not cover the requested window."""


class ExchangeUnavailable(DataError):
    """An exchange could not be reached; cached pages stay cached."""


class StoreBusyError(CovcallError):
    """The DuckDB file stayed locked by another process past the timeout."""


class SpecError(CovcallError):
    """A backtest, batch, range or walk specification is invalid."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' when nothing is close.

    >>> did_you_mean("hold_to_expiri", ["hold_to_expiry", "tp_and_roll"])
    " (did you mean 'hold_to_expiry'?)"
    >>> did_you_mean("zzz", ["BTC", "ETH"])
    ''
    """
    match = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def choice_error(name: str, value: object, choices: Iterable[str]) -> SpecError:
    """Build the standard 'unknown value' error listing accepted values and the closest one."""
    choices = list(choices)
    return SpecError(
        f"{name} must be one of {', '.join(choices)}; got {value!r}{did_you_mean(str(value), choices)}"
    )
