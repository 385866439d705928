"""SIGKILL at random (seeded) moments: the store stays consistent and no stray files are left once the next command
has run (temp files of dead processes and half-renamed CSV/JSONL pairs are recovered)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

EXE = str(Path(sys.executable).with_name("covcall"))
BATCH = {"name": "kill", "underlyings": ["BTC", "ETH"], "timeframes": ["1d"],
         "windows": [{"start": "2022-01-01", "end": "2022-06-30"}, {"start": "2023-01-01", "end": "2023-06-30"}],
         "exit_styles": ["hold_to_expiry", "tp_and_roll"]}


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "DUCKDB_PATH": str(tmp / "db" / "c.duckdb"), "TRAINING_DATA_DIR": str(tmp / "exports"),
            "SAVE_TRAINING_DATA": "true"}


def _kill_after(argv: list[str], env: dict[str, str], cwd: Path, delay: float) -> int | None:
    proc = subprocess.Popen([EXE, *argv], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
        return proc.returncode  # finished before the kill: the invariants must hold all the same
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None


def _check_store(db: Path) -> int:
    """Every saved run is whole (its counts match its rows); returns how many runs are saved."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        runs = con.execute("SELECT run_id, status, n_trades, n_decisions FROM runs").fetchall()
        for run_id, status, n_trades, n_decisions in runs:
            if status != "ok":
                continue
            trades = con.execute("SELECT count(*) FROM trades WHERE run_id = ?", [run_id]).fetchone()[0]
            examples = con.execute("SELECT count(*) FROM examples WHERE run_id = ?", [run_id]).fetchone()[0]
            equity = con.execute("SELECT count(*) FROM equity WHERE run_id = ?", [run_id]).fetchone()[0]
            assert (trades, examples) == (n_trades, n_decisions) and equity > 0, run_id
        return len(runs)
    finally:
        con.close()


def _check_exports(folder: Path) -> None:
    names = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    stray = [n for n in names if n.startswith((".covcall-", "tmp_")) or n.endswith(".tmp")]
    assert not stray, stray
    csvs = {n[:-4] for n in names if n.endswith(".csv") and n.startswith("training_dataset_")}
    jsonls = {n[:-6] for n in names if n.endswith(".jsonl") and n.startswith("training_dataset_")}
    assert csvs == jsonls, f"CSV/JSONL pairs incomplete: {sorted(csvs ^ jsonls)}"
    for stem in csvs:  # both files of a pair hold the same rows
        n_csv = sum(1 for _ in open(folder / f"{stem}.csv", encoding="utf-8")) - 1
        n_jsonl = sum(1 for _ in open(folder / f"{stem}.jsonl", encoding="utf-8"))
        assert n_csv == n_jsonl, stem


def _next_command(env: dict[str, str], cwd: Path) -> None:
    """Any later exporting command recovers what a killed one left behind."""
    done = subprocess.run([EXE, "backtest", "--start", "2024-01-01", "--end", "2024-01-31", "--json"], env=env,
                          cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_killed_batch_leaves_a_consistent_store_and_no_stray_files(tmp_path: Path, seed: int) -> None:
    spec = tmp_path / "batch.json"
    spec.write_text(json.dumps(BATCH))
    env = _env(tmp_path)
    delay = float(np.random.default_rng(seed).uniform(2.0, 9.0))
    code = _kill_after(["batch", "--spec", str(spec)], env, tmp_path, delay)
    db = Path(env["DUCKDB_PATH"])
    if db.exists():
        _check_store(db)
    status = subprocess.run([EXE, "status", "--json"], env=env, cwd=tmp_path, capture_output=True, text=True)
    jobs = [j for j in json.loads(status.stdout)["jobs"] if j["kind"] == "batch"]
    # the batch marks itself running when it starts: once killed, it reads as interrupted, or done when the kill
    # landed after it had finished (while the process was exiting); never "running"
    statuses = [j["status"] for j in jobs]
    assert statuses in (([], ["interrupted"], ["done"]) if code is None else (["done"],)), statuses
    _next_command(env, tmp_path)
    assert _check_store(db) >= 1
    _check_exports(Path(env["TRAINING_DATA_DIR"]))


@pytest.mark.parametrize("seed", [21, 22])
def test_killed_export_leaves_no_partial_file(tmp_path: Path, seed: int) -> None:
    env = _env(tmp_path)
    done = subprocess.run([EXE, "backtest", "--timeframe", "4h", "--start", "2022-01-01", "--end", "2023-12-31",
                           "--json"], env={**env, "SAVE_TRAINING_DATA": "false"}, cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "exports" / "cands.csv"
    con = duckdb.connect(env["DUCKDB_PATH"], read_only=True)
    try:
        rows = con.execute("SELECT count(*) FROM candidates").fetchone()[0]
    finally:
        con.close()
    rng = np.random.default_rng(seed)
    for _ in range(3):
        _kill_after(["export", "--table", "candidates", "--out", str(out)], env, tmp_path,
                    float(rng.uniform(0.3, 2.5)))
        if out.exists():  # an export that finished is complete: every stored candidate row is in it
            assert sum(1 for _ in open(out, encoding="utf-8")) - 1 == rows
    _next_command(env, tmp_path)
    _check_exports(out.parent)


def test_ctrl_c_during_export_is_one_line_and_exit_130(tmp_path: Path) -> None:
    env = _env(tmp_path)
    subprocess.run([EXE, "backtest", "--timeframe", "4h", "--start", "2022-01-01", "--end", "2023-06-30"],
                   env={**env, "SAVE_TRAINING_DATA": "false"}, cwd=tmp_path, capture_output=True, check=True)
    # a thousand candidate rows export in milliseconds, faster than the poll below under a loaded suite: copies
    # of them make an export that runs for about a second, so the interrupt lands while it writes
    con = duckdb.connect(env["DUCKDB_PATH"])
    try:
        con.execute("INSERT INTO candidates SELECT c.* FROM candidates c, range(300)")
    finally:
        con.close()
    out = tmp_path / "exports" / "cands.csv"
    for _attempt in range(3):  # on a loaded machine the export can finish between the poll and the signal
        proc = subprocess.Popen([EXE, "export", "--table", "candidates", "--out", str(out)], env=env,
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # interrupt while the export is writing (its temp file is there), not while the interpreter is shutting
        # down after finishing: then Python has restored the default handler and the signal just ends the process
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if out.parent.exists() and any(p.name.startswith((".covcall-", "tmp_")) for p in out.parent.iterdir()):
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        if not (proc.returncode == 0 or (out.exists() and not err.strip())):
            break
        out.unlink(missing_ok=True)
    else:
        pytest.skip("the export finished before the interrupt arrived, three times")
    assert proc.returncode == 130 and err.strip() == "error: interrupted", err
    left = list(out.parent.iterdir()) if out.parent.exists() else []
    assert not [p.name for p in left if p.name.startswith((".covcall-", "tmp_"))]
