"""Long operations (batches, walks, imports) recorded as jobs: running, done, failed or interrupted."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from covcall.enums import RunStatus
from covcall.jsonutil import dumps
from covcall.lazy import lazy_module
from covcall.store import Store

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_module("pandas")


def _alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OSError, ValueError, OverflowError):
        return False
    return True


def effective_status(status: str, pid: Any, host: Any, this_host: str | None = None) -> str:
    """A `running` job whose process no longer exists on this machine was killed: it is `interrupted`.

    >>> effective_status("running", 2**22 + 12345, socket.gethostname())
    'interrupted'
    >>> effective_status("running", os.getpid(), socket.gethostname()), effective_status("done", 1, "x")
    ('running', 'done')
    """
    if status != RunStatus.RUNNING:
        return str(status)
    here = this_host or socket.gethostname()
    if host == here and isinstance(pid, int | float) and pid == pid and not _alive(int(pid)):
        return RunStatus.INTERRUPTED.value
    return str(status)


def job_rows(store: Store, kind: str | None = None) -> list[dict[str, Any]]:
    """Jobs newest first as plain dicts with the effective status (for commands that must start fast)."""
    here = socket.gethostname()
    rows = store.job_rows(kind)
    for r in rows:
        r["status"] = effective_status(r["status"], r["pid"], r["host"], here)
    return rows


def list_jobs(store: Store, kind: str | None = None) -> pd.DataFrame:
    """Jobs newest first, `status` replaced by the effective status (killed ones show as interrupted)."""
    df = store.read_jobs(kind)
    if len(df):
        here = socket.gethostname()
        df["status"] = [effective_status(s, p, h, here) for s, p, h in zip(df["status"], df["pid"], df["host"],
                                                                           strict=True)]
    return df


@contextmanager
def tracked(store: Store | None, job_id: str, kind: str, name: str,
            detail: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Record a job as running, then done / failed / interrupted (Ctrl-C) when the block ends.

    The yielded dict may be filled with details (counts, ids) that are stored with the final status. A killed
    process cannot record anything: its row stays `running` and `list_jobs` reports it as interrupted.
    """
    info: dict[str, Any] = dict(detail or {})
    if store is None:
        yield info
        return
    store.start_job(job_id, kind, name, os.getpid(), socket.gethostname(), dumps(info))
    try:
        yield info
    except Exception as err:
        store.finish_job(job_id, RunStatus.FAILED.value, f"{type(err).__name__}: {err}"[:2000], dumps(info))
        raise
    except BaseException:  # Ctrl-C, or Stop on a page (Streamlit stops the script with a BaseException)
        store.finish_job(job_id, RunStatus.INTERRUPTED.value, "interrupted", dumps(info))
        raise
    store.finish_job(job_id, RunStatus.DONE.value, None, dumps(info))
