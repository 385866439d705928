"""Shared fixtures, and the rule that tests never reach the network (only loopback and Unix sockets)."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
for p in (str(ROOT), str(TESTS)):  # ui.py (dashboard helpers) and tests/fakes import from here
    if p not in sys.path:
        sys.path.insert(0, p)

SHARED_DATA = ROOT.parent / "shared" / "data"

# Child processes (CLI, streamlit, dask workers) inherit this: any HTTP client honouring the standard proxy
# variables (requests, aiohttp, urllib) is sent to a closed loopback port and fails at once, offline or not.
_DEAD_PROXY = "http://127.0.0.1:9"
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ[_var] = _DEAD_PROXY
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"


class NetworkBlocked(OSError):
    """Raised when a test tries to reach a host other than this machine."""


def _is_local(host: Any) -> bool:
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text in ("localhost", "", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        raise NetworkBlocked(f"tests may not reach the network (tried {address!r}); use a fake or loopback")


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    _check(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    _check(self, address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_local(host):
        raise socket.gaierror(socket.EAI_NONAME, f"tests may not resolve {host!r}: the network is blocked")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DuckDB path in tmp_path named by DUCKDB_PATH; cwd is tmp_path so no stray .env is read."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "covcall.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(path))
    monkeypatch.setenv("TRAINING_DATA_DIR", str(tmp_path / "exports"))
    monkeypatch.delenv("SAVE_TRAINING_DATA", raising=False)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Any:
    """A real Store on a fresh DuckDB file."""
    from covcall.store import Store

    return Store(tmp_path / "store.duckdb")


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real market files); the test is skipped when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


@pytest.fixture
def app_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The dashboard pointed at a fresh DuckDB file in tmp_path, every Streamlit cache cleared."""
    from apptest_support import fresh_env

    return fresh_env(monkeypatch, tmp_path)
