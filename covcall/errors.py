"""User-facing error types: every message says what went wrong and how to fix it."""

from __future__ import annotations

import difflib
import errno
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


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def describe(err: BaseException) -> str | None:
    """One line for an error a user (not a bug) caused, or None for anything else.

    Entry points (the CLI's main, each dashboard page) call this so that bad files, full disks, unreadable text,
    absurd nesting and refused LightGBM settings are one readable line instead of a traceback.

    >>> describe(OSError(errno.ENOSPC, "No space left on device", "data/x.csv"))
    'cannot write data/x.csv: the disk is full; free some space and try again'
    >>> describe(ValueError("a bug")) is None
    True
    """
    if isinstance(err, CovcallError):
        return str(err)
    if isinstance(err, RecursionError):
        return ("the input is nested too deeply to process (thousands of levels); a spec file or JSON value "
                "should be a few levels deep: simplify it")
    if isinstance(err, UnicodeError):
        where = f" ({err.encoding}, byte {err.start})" if isinstance(err, UnicodeDecodeError) else ""
        return f"cannot read a file as text{where}; save it as UTF-8 and try again"
    if isinstance(err, MemoryError):
        return "out of memory; use a shorter window, a coarser timeframe or fewer runs at once"
    if isinstance(err, OSError):
        name = err.filename or "a file"
        hints = {errno.ENOSPC: "the disk is full; free some space and try again",
                 errno.EACCES: "permission denied; choose a place you can write to",
                 errno.EPERM: "operation not permitted; choose a place you can write to",
                 errno.EROFS: "the file system is read-only; choose another place",
                 errno.ENOENT: "no such file or folder; check the path",
                 errno.EISDIR: "it is a folder; give a file name",
                 errno.ENOTDIR: "a part of the path is a file, not a folder; check the path"}
        why = hints.get(err.errno or -1, err.strerror or _first_line(err))
        verb = "write" if err.errno in (errno.ENOSPC, errno.EROFS) else "use"
        return f"cannot {verb} {name}: {why}"
    module = type(err).__module__ or ""
    if module.startswith("duckdb"):
        return f"database error: {_first_line(err)}; check DUCKDB_PATH (a writable DuckDB file) and try again"
    if module.startswith("lightgbm"):
        return (f"LightGBM refused the model settings: {_first_line(err)}; check the `model.params` of the walk "
                "spec (see docs/models.md)")
    if module.startswith("pandas") and type(err).__name__ in ("ParserError", "OutOfBoundsDatetime",
                                                               "EmptyDataError", "DateParseError"):
        return f"cannot parse the data: {_first_line(err)}"
    return None
