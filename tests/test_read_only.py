"""Read-only commands open the database read-only: they work on an immutable file and beside another reader that
locks writers out, while a write says clearly why it cannot proceed and changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).with_name("covcall"))
HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
time.sleep(120)
"""


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    db = tmp_path / "c.duckdb"
    env = {**os.environ, "DUCKDB_PATH": str(db)}
    subprocess.run([EXE, "backtest", "--start", "2024-01-01", "--end", "2024-02-29"], env=env, cwd=tmp_path,
                   check=True, capture_output=True)
    return db


def _cli(db: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DUCKDB_PATH": str(db), "STORE_TIMEOUT_S": "1"}
    return subprocess.run([EXE, *argv], env=env, cwd=db.parent, capture_output=True, text=True)


@pytest.fixture
def reader(filled: Path) -> Iterator[Path]:
    """Another process holds a read-only connection: writers are locked out, readers are not."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(filled)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    try:
        yield filled
    finally:
        proc.kill()
        proc.wait()


def test_status_runs_and_export_read_beside_another_reader(reader: Path) -> None:
    status = _cli(reader, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["counts"]["runs"] == 1
    runs = _cli(reader, "runs", "--json")
    assert runs.returncode == 0 and len(json.loads(runs.stdout)) == 1
    out = reader.parent / "x.csv"
    export = _cli(reader, "export", "--out", str(out), "--json")
    assert export.returncode == 0, export.stderr
    assert json.loads(export.stdout)["rows"] == sum(1 for _ in open(out)) - 1 > 0


def test_a_write_beside_a_reader_is_one_clear_line(reader: Path) -> None:
    done = _cli(reader, "backtest", "--start", "2024-01-01", "--end", "2024-01-31")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "stayed locked by another process" in done.stderr


@pytest.fixture
def immutable(filled: Path) -> Iterator[Path]:
    """The database file made immutable (chattr +i binds root too); skipped where chattr is unavailable."""
    done = subprocess.run(["chattr", "+i", str(filled)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        yield filled
    finally:
        subprocess.run(["chattr", "-i", str(filled)], check=True)


def test_an_immutable_database_serves_reads_and_refuses_writes_in_one_line(immutable: Path) -> None:
    before = immutable.read_bytes()
    assert _cli(immutable, "status").returncode == 0
    runs = _cli(immutable, "runs", "--json")
    assert runs.returncode == 0 and len(json.loads(runs.stdout)) == 1
    write = _cli(immutable, "backtest", "--start", "2024-01-01", "--end", "2024-01-31")
    assert write.returncode == 2 and write.stderr.startswith("error: ") and write.stderr.count("\n") == 1
    assert "Traceback" not in write.stderr
    assert immutable.read_bytes() == before


def test_dataset_page_reads_beside_another_reader(reader: Path, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    from apptest_support import errors, fresh_env, open_page, texts

    fresh_env(monkeypatch, tmp_path)
    monkeypatch.setenv("DUCKDB_PATH", str(reader))
    at = open_page("pages/dataset.py")
    assert not errors(at)
    assert "rows" in texts(at)
