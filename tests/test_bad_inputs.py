"""A new user's bad inputs, as a table: each is exit 2, exactly one `error:` line, no traceback, nothing stored changed.

The store is filled first (candles, an IV series, a run, a range set) so that "nothing changed" means something:
a digest of every table's rows and of every file in the export folder is taken before and after each command.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from covcall.cli import main

ROOT_SPEC = {
    "name": "walk-ok",
    "rangeTrain": [{"startDate": "2023-01-01", "endDate": "2023-03-31"}],
    "rangeTest": {"startDate": "2023-06-01", "endDate": "2023-07-31"},
    "gap_days": 40, "timeframe": "1d", "grid": {"threshold": [0.1]}, "model": {"enabled": False},
}
BATCH = {"name": "ok", "underlyings": ["BTC"], "timeframes": ["1d"],
         "windows": [{"start": "2024-01-01", "end": "2024-01-31"}]}
CANDLES = "timestamp,open,high,low,close,volume\n" + "".join(
    f"2024-01-{d:02d},{42000 + d},{43000 + d},{41000 + d},{42500 + d},10\n" for d in range(1, 11))
IV = "date,dvol\n" + "".join(f"2024-01-{d:02d},{50 + d}\n" for d in range(1, 11))


@dataclass
class Env:
    root: Path
    db: Path
    exports: Path

    def file(self, name: str, content: str | bytes) -> str:
        p = self.root / "inputs" / name
        p.parent.mkdir(exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
        return str(p)

    def spec(self, name: str, data: object) -> str:
        return self.file(name, json.dumps(data))


def digest(env: Env) -> str:
    """Every row of every table (sorted) and every file under the export folder and the inputs' siblings."""
    h = hashlib.sha256()
    con = duckdb.connect(str(env.db), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        for t in tables:
            h.update(t.encode())
            for row in con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall():
                h.update(repr(row).encode())
    finally:
        con.close()
    for folder in (env.exports, env.db.parent):
        for p in sorted(folder.rglob("*")) if folder.exists() else []:
            if p.is_file() and p != env.db and not p.name.endswith(".wal"):
                h.update(str(p.relative_to(env.root)).encode() + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with candles, an IV series, one run, a range set and one export, built once."""
    root = tmp_path_factory.mktemp("filled")
    db = root / "db" / "covcall.duckdb"
    env = {**os.environ, "DUCKDB_PATH": str(db), "TRAINING_DATA_DIR": str(root / "exports")}
    old = dict(os.environ)
    os.environ.update(env)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        e = Env(root, db, root / "exports")
        assert main(["data", "import", "--csv", e.file("c.csv", CANDLES), "--underlying", "BTC",
                     "--timeframe", "1d"]) == 0
        assert main(["data", "import-iv", "--csv", e.file("iv.csv", IV), "--underlying", "BTC"]) == 0
        assert main(["backtest", "--start", "2024-01-01", "--end", "2024-01-31"]) == 0
        assert main(["ranges", "save", "--spec", e.spec("rs.json", ROOT_SPEC), "--name", "keep"]) == 0
        assert main(["export", "--out", str(root / "exports" / "all.csv")]) == 0
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(old)
    return root


@pytest.fixture
def env(filled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    """A private copy of the filled store (each case may try to damage it)."""
    import shutil

    root = tmp_path / "w"
    shutil.copytree(filled, root)
    e = Env(root, root / "db" / "covcall.duckdb", root / "exports")
    monkeypatch.chdir(root)
    monkeypatch.setenv("DUCKDB_PATH", str(e.db))
    monkeypatch.setenv("TRAINING_DATA_DIR", str(e.exports))
    monkeypatch.setenv("STORE_TIMEOUT_S", "5")
    for var in ("SAVE_TRAINING_DATA", "FEE_RATE", "FEE_CAP", "SETTLEMENT_FEE_RATE", "RISK_FREE_RATE",
                "SYNTHETIC_SEED", "DATA_SOURCE", "EXCHANGE_ID"):
        monkeypatch.delenv(var, raising=False)
    return e


Case = Callable[[Env, pytest.MonkeyPatch], list[str]]


def bt(*flags: str) -> Case:
    return lambda e, m: ["backtest", "--start", "2024-01-01", "--end", "2024-01-31", *flags]


def setting(var: str, value: str, argv: tuple[str, ...] = ("status",)) -> Case:
    def case(e: Env, m: pytest.MonkeyPatch) -> list[str]:
        m.setenv(var, value)
        return list(argv)
    return case


def walk_spec(**changes: object) -> Case:
    return lambda e, m: ["walk", "--spec", e.spec("w.json", {**ROOT_SPEC, **changes})]


def batch_spec(**changes: object) -> Case:
    return lambda e, m: ["batch", "--spec", e.spec("b.json", {**BATCH, **changes})]


def raw_spec(name: str, content: str | bytes, command: str = "walk") -> Case:
    return lambda e, m: [command, "--spec", e.file(name, content)]


def imp(content: str | bytes, *flags: str, name: str = "x.csv", kind: str = "import") -> Case:
    extra = ("--timeframe", "1d") if kind == "import" and "--timeframe" not in flags else ()
    return lambda e, m: ["data", kind, "--csv", e.file(name, content), "--underlying", "BTC", *extra, *flags]


def export(*flags: str) -> Case:
    return lambda e, m: ["export", *flags]


def under_a_file(var: str, tail: str, argv: tuple[str, ...]) -> Case:
    def case(e: Env, m: pytest.MonkeyPatch) -> list[str]:
        blocker = e.root / "a_file"
        blocker.write_text("x")
        m.setenv(var, str(blocker / tail))
        return list(argv)
    return case


def fifo_out(e: Env, m: pytest.MonkeyPatch) -> list[str]:
    p = e.root / "pipe"
    os.mkfifo(p)
    return ["export", "--out", str(p)]


def env_file(content: bytes) -> Case:
    def case(e: Env, m: pytest.MonkeyPatch) -> list[str]:
        (e.root / ".env").write_bytes(content)
        return ["status"]
    return case


DEEP = "[" * 100_000 + "]" * 100_000
DVOL_AS_CANDLES = "date,symbol,open,high,low,close\n" + "".join(
    f"2024-01-{d:02d},BTC,{50 + d},{52 + d},{48 + d},{51 + d}\n" for d in range(1, 11))
OTHER_CANDLES = CANDLES.replace(",425", ",426")

CASES: dict[str, tuple[Case, str]] = {
    # -- settings ----------------------------------------------------------------------------------
    "bool setting": (setting("SAVE_TRAINING_DATA", "maybe"), "SAVE_TRAINING_DATA"),
    "fee rate text": (setting("FEE_RATE", "abc"), "FEE_RATE"),
    "fee rate nan": (setting("FEE_RATE", "nan"), "FEE_RATE"),
    "fee rate inf": (setting("FEE_RATE", "inf"), "FEE_RATE"),
    "fee rate negative": (setting("FEE_RATE", "-0.1"), "FEE_RATE"),
    "fee rate huge": (setting("FEE_RATE", "0.5"), "FEE_RATE"),
    "fee cap above 1": (setting("FEE_CAP", "2"), "FEE_CAP"),
    "settlement fee text": (setting("SETTLEMENT_FEE_RATE", "x"), "SETTLEMENT_FEE_RATE"),
    "rate nan": (setting("RISK_FREE_RATE", "nan"), "RISK_FREE_RATE"),
    "rate 500 %": (setting("RISK_FREE_RATE", "5"), "RISK_FREE_RATE"),
    "seed negative": (setting("SYNTHETIC_SEED", "-1"), "SYNTHETIC_SEED"),
    "seed fraction": (setting("SYNTHETIC_SEED", "1.5"), "SYNTHETIC_SEED"),
    "seed text": (setting("SYNTHETIC_SEED", "abc"), "SYNTHETIC_SEED"),
    "data source": (setting("DATA_SOURCE", "binance"), "DATA_SOURCE"),
    "data source empty": (setting("DATA_SOURCE", ""), "DATA_SOURCE"),
    "timeout zero": (setting("STORE_TIMEOUT_S", "0"), "STORE_TIMEOUT_S"),
    "timeout nan": (setting("STORE_TIMEOUT_S", "nan"), "STORE_TIMEOUT_S"),
    "db under a file": (under_a_file("DUCKDB_PATH", "x.duckdb", ("status",)), "a_file"),
    "db is a folder": (lambda e, m: (m.setenv("DUCKDB_PATH", str(e.exports)), ["status"])[1], "is a folder"),
    "exports under a file": (lambda e, m: (m.setenv("SAVE_TRAINING_DATA", "true"), under_a_file(
        "TRAINING_DATA_DIR", "out", ("backtest", "--start", "2024-01-01", "--end", "2024-01-31"))(e, m))[1],
        "a_file"),
    ".env latin-1": (env_file("FEE_RATE=0.0003 # caf\xe9\n".encode("latin-1")), ".env"),
    ".env bad value": (env_file(b"FEE_RATE=lots\n"), "FEE_RATE"),
    "exchange typo": (lambda e, m: ["data", "fetch", "--exchange", "binanse", "--underlying", "BTC", "--start",
                                    "2024-01-01", "--end", "2024-01-02"], "binance"),
    # -- dates ---------------------------------------------------------------------------------------
    "start 0": (lambda e, m: ["backtest", "--start", "0", "--end", "2024-01-31"], "start"),
    "start feb 30": (lambda e, m: ["backtest", "--start", "2024-02-30", "--end", "2024-03-31"], "start"),
    "start compact": (lambda e, m: ["backtest", "--start", "20240101", "--end", "2024-01-31"], "start"),
    "start word": (lambda e, m: ["backtest", "--start", "yesterday", "--end", "2024-01-31"], "start"),
    "start bad offset": (lambda e, m: ["backtest", "--start", "2024-01-01T00:00+25:00", "--end", "2024-01-31"],
                         "start"),
    "start empty": (lambda e, m: ["backtest", "--start", "", "--end", "2024-01-31"], "start"),
    "start epoch": (lambda e, m: ["backtest", "--start", "1e9", "--end", "2024-01-31"], "start"),
    "end month 13": (lambda e, m: ["backtest", "--start", "2024-01-01", "--end", "2024-13-01"], "end"),
    "end before start": (lambda e, m: ["backtest", "--start", "2024-03-01", "--end", "2024-01-31"], "swap"),
    "batch window 0": (batch_spec(windows=[{"start": "0", "end": "2024-01-31"}]), "start"),
    "batch window feb 30": (batch_spec(windows=[{"start": "2024-01-01", "end": "2024-02-30"}]), "end"),
    "batch window reversed": (batch_spec(windows=[{"start": "2024-02-01", "end": "2024-01-01"}]), "swap"),
    "range date feb 30": (walk_spec(rangeTest={"startDate": "2023-02-30", "endDate": "2023-07-31"}),
                          "startDate"),
    "range date number": (walk_spec(rangeTest={"startDate": 20230601, "endDate": "2023-07-31"}), "number"),
    "export start text": (export("--start", "soon", "--out", "x.csv"), "--start"),
    "export end feb 30": (export("--end", "2024-02-30", "--out", "x.csv"), "--end"),
    "export start after end": (export("--start", "2024-03-01", "--end", "2024-01-01", "--out", "x.csv"), "swap"),
    "fetch slash date": (lambda e, m: ["data", "fetch", "--underlying", "BTC", "--start", "2024/01/01", "--end",
                                       "2024-01-02"], "--start"),
    "rolling start 0": (lambda e, m: ["ranges", "rolling", "--start", "0", "--train-days", "30", "--test-days",
                                      "10"], "start"),
    "suggest test start": (lambda e, m: ["ranges", "suggest", "--test-start", "later", "--test-end",
                                         "2024-01-31"], "--test-start"),
    # -- numbers -------------------------------------------------------------------------------------
    "threshold nan": (bt("--threshold", "nan"), "threshold"),
    "threshold inf": (bt("--threshold", "inf"), "threshold"),
    "threshold -inf": (bt("--threshold", "-inf"), "threshold"),
    "quantity 1e308": (bt("--quantity", "1e308"), "quantity"),
    "quantity 0": (bt("--quantity", "0"), "quantity"),
    "quantity negative": (bt("--quantity", "-1"), "quantity"),
    "quantity text": (bt("--quantity", "abc"), "quantity"),
    "target dte 1e6": (bt("--policy", "fixed_delta", "--target-dte-days", "1e6"), "target_dte_days"),
    "take profit 1.5": (bt("--take-profit", "1.5"), "take_profit"),
    "take profit nan": (bt("--take-profit", "nan"), "take_profit"),
    "delta range reversed": (bt("--delta-min", "0.5", "--delta-max", "0.2"), "delta_min"),
    "dte range reversed": (bt("--dte-min-days", "40", "--dte-max-days", "10"), "dte_min_days"),
    "dte max 1000": (bt("--dte-max-days", "1000"), "dte_max_days"),
    "seed negative flag": (bt("--seed", "-1"), "seed"),
    "seed fraction flag": (bt("--seed", "1.5"), "seed"),
    "decision hour 24": (bt("--decision-hour-utc", "24"), "decision_hour_utc"),
    "rolling count 1e8": (lambda e, m: ["ranges", "rolling", "--start", "2024-01-01", "--train-days", "30",
                                        "--test-days", "10", "--count", "100000000"], "count"),
    "rolling count 0": (lambda e, m: ["ranges", "rolling", "--start", "2024-01-01", "--train-days", "30",
                                      "--test-days", "10", "--count", "0"], "count"),
    "rolling step 0": (lambda e, m: ["ranges", "rolling", "--start", "2024-01-01", "--train-days", "30",
                                     "--test-days", "10", "--step-days", "0"], "step_days"),
    "rolling train text": (lambda e, m: ["ranges", "rolling", "--start", "2024-01-01", "--train-days", "x",
                                         "--test-days", "10"], "train-days"),
    "runs limit 0": (lambda e, m: ["runs", "--limit", "0"], "--limit"),
    "runs limit negative": (lambda e, m: ["runs", "--limit", "-5"], "--limit"),
    "batch threshold NaN": (raw_spec("b.json", json.dumps({**BATCH, "base": {"threshold": float("nan")}}),
                                     "batch"), "threshold"),
    "walk gap NaN": (raw_spec("w.json", json.dumps({**ROOT_SPEC, "gap_days": float("nan")})), "gap_days"),
    "walk gap negative": (walk_spec(gap_days=-1), "gap_days"),
    "walk gap 1e9": (walk_spec(gap_days=1e9), "gap_days"),
    "walk seed negative": (walk_spec(seed=-3), "seed"),
    "walk strategy threshold inf": (raw_spec("w.json", json.dumps({**ROOT_SPEC, "strategy": {
        "threshold": float("inf")}})), "threshold"),
    "lgbm learning rate": (walk_spec(model={"enabled": True, "params": {"learning_rate": -1}}), "learning_rate"),
    "lgbm param typo": (walk_spec(model={"enabled": True, "params": {"num_leave": 7}}), "num_leaves"),
    "lgbm objective": (walk_spec(model={"enabled": True, "params": {"objective": "regresion"}}), "objective"),
    "lgbm rounds zero": (walk_spec(model={"enabled": True, "params": {"num_boost_round": 0}}), "num_boost_round"),
    "walk model threshold nan": (raw_spec("w.json", json.dumps({**ROOT_SPEC, "model": {
        "enabled": True, "threshold": float("nan")}})), "threshold"),
    # -- specs ---------------------------------------------------------------------------------------
    "walk metric typo": (walk_spec(metric="sharp"), "sharpe"),
    "walk baseline typo": (walk_spec(baselines=["hodl", "vault"]), "vault_weekly_10d"),
    "walk strategy text": (walk_spec(strategy={"delta_min": "x"}), "delta_min"),
    "walk strategy typo": (walk_spec(strategy={"delta_mn": 0.1}), "delta_min"),
    "walk unknown key": (walk_spec(rangeTrains=[]), "rangeTrains"),
    "walk strategy setting at the top": (walk_spec(exit_style="tp_and_roll"), 'goes under "strategy"'),
    "walk timeframe": (walk_spec(timeframe="2h"), "timeframe"),
    "walk name path": (walk_spec(name="../../etc"), "walk name"),
    "walk name long": (walk_spec(name="w" * 200), "walk name"),
    "walk no train": (walk_spec(rangeTrain=[]), "rangeTrain"),
    "walk train overlaps test": (walk_spec(rangeTrain=[{"startDate": "2023-05-01", "endDate": "2023-06-15"}]),
                                 "overlaps"),
    "spec is a list": (raw_spec("l.json", "[1, 2]"), "object"),
    "spec nested deep": (raw_spec("deep.json", DEEP), "deep"),
    "spec extension": (raw_spec("w.yaml", "name: x"), ".json or .toml"),
    "spec missing": (lambda e, m: ["walk", "--spec", str(e.root / "nope.json")], "not found"),
    "spec folder": (lambda e, m: ["walk", "--spec", str(e.exports) + "/"], "spec"),
    "spec bad json": (raw_spec("bad.json", '{"name": "x",}'), "invalid JSON"),
    "spec bad toml": (raw_spec("bad.toml", 'name = "x\n'), "invalid TOML"),
    "spec latin-1": (raw_spec("l1.json", '{"name": "caf\xe9"}'.encode("latin-1")), "spec"),
    "spec empty": (raw_spec("e.json", ""), "invalid JSON"),
    "batch no windows": (batch_spec(windows=[]), "windows"),
    "batch exit style": (batch_spec(exit_styles=["tp"]), "exit_style"),
    "batch name path": (batch_spec(name="a/b"), "batch name"),
    "batch name long": (batch_spec(name="b" * 100), "batch name"),
    "batch timeframe": (batch_spec(timeframes=["2h"]), "timeframe"),
    "batch base typo": (batch_spec(base={"delta_mn": 0.1}), "delta_min"),
    "batch backtest setting at the top": (batch_spec(source="store"), 'goes under "base"'),
    "batch spec list": (raw_spec("bl.json", "[]", "batch"), "object"),
    # -- names and lookups -----------------------------------------------------------------------------
    "range set name path": (lambda e, m: ["ranges", "save", "--spec", e.spec("r.json", ROOT_SPEC), "--name",
                                          "../x"], "range set name"),
    "range set name blank": (lambda e, m: ["ranges", "save", "--spec", e.spec("r.json", ROOT_SPEC), "--name",
                                           "  "], "range set name"),
    "range set name long": (lambda e, m: ["ranges", "save", "--spec", e.spec("r.json", ROOT_SPEC), "--name",
                                          "r" * 100], "range set name"),
    "range set overwrite": (lambda e, m: ["ranges", "save", "--spec", e.spec("r.json", {
        **ROOT_SPEC, "gap_days": 50}), "--name", "keep"], "--force"),
    "range set unknown": (lambda e, m: ["ranges", "show", "kep"], "keep"),
    "walk unknown": (lambda e, m: ["walks", "--show", "nope"], "nope"),
    "model unknown": (lambda e, m: ["models", "show", "nope"], "nope"),
    "explain unknown model": (lambda e, m: ["models", "explain", "nope", "--run", "x"], "nope"),
    "underlying symbol": (bt("--underlying", "BTC;DROP"), "BTC;DROP"),
    "underlying synthetic": (bt("--underlying", "XRP"), "XRP"),
    "timeframe 2h": (bt("--timeframe", "2h"), "timeframe"),
    "exit style typo": (bt("--exit-style", "hold"), "hold_to_expiry"),
    "policy unknown": (bt("--policy", "magic"), "policy"),
    "from an unknown run": (bt("--from-run", "20240101-000000-nope"), "no run '20240101-000000-nope'"),
    "policy model no id": (bt("--policy", "model"), "model_id"),
    "policy model unknown id": (bt("--policy", "model", "--model-id", "nope"), "nope"),
    "store source no eth": (bt("--source", "store", "--underlying", "ETH"), "ETH"),
    "dvol source missing": (bt("--source", "store", "--iv-source", "dvol", "--underlying", "ETH"), "ETH"),
    # -- CSV imports ---------------------------------------------------------------------------------
    "IV index as candles": (imp(DVOL_AS_CANDLES), "import-iv"),
    "other candles over stored": (imp(OTHER_CANDLES), "--replace"),
    "candles as IV": (imp(CANDLES, kind="import-iv"), "volume"),
    "IV mixed units": (imp("date,iv\n2024-02-01,0.45\n2024-02-02,47.5\n", kind="import-iv"), "mixes"),
    "IV of prices": (imp("date,close\n2024-02-01,40000\n2024-02-02,41000\n", kind="import-iv"), "price"),
    "IV negative": (imp("date,iv\n2024-02-01,-0.4\n", kind="import-iv"), "not positive"),
    "IV no column": (imp("date,price\n2024-02-01,1\n", kind="import-iv"), "no IV column"),
    "IV over stored": (imp(IV.replace(",5", ",6"), kind="import-iv"), "--replace"),
    "daily as 1h": (imp(CANDLES, "--timeframe", "1h"), "1d apart"),
    "4h as 1d": (imp("timestamp,open,high,low,close\n2024-02-01 00:00,1,2,1,1\n2024-02-01 04:00,1,2,1,1\n"
                     "2024-02-01 08:00,1,2,1,1\n"), "4h apart"),
    "binary file": (imp(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", name="img.csv"), "not a text CSV"),
    "missing csv": (lambda e, m: ["data", "import", "--csv", str(e.root / "none.csv"), "--underlying", "BTC",
                                  "--timeframe", "1d"], "does not exist"),
    "csv is a folder": (lambda e, m: ["data", "import", "--csv", str(e.exports), "--underlying", "BTC",
                                      "--timeframe", "1d"], "folder"),
    "empty csv": (imp(""), "empty"),
    "header only": (imp("timestamp,open,high,low,close\n"), "no data rows"),
    "headerless": (imp("2024-02-01,1,2,1,1\n"), "header"),
    "malformed rows": (imp("timestamp,open,high,low,close\n2024-02-01,x,2,1,1\n2024-02-02,1,2\n"), "malformed"),
    "zero price": (imp("timestamp,open,high,low,close\n2024-02-01,0,2,1,1\n"), "not positive"),
    "high below low": (imp("timestamp,open,high,low,close\n2024-02-01,1,1,2,1\n"), "high 1 < low 2"),
    "conflicting duplicate": (imp("timestamp,open,high,low,close\n2024-02-01,1,2,1,1\n2024-02-01,1,3,1,1\n"),
                              "also on line"),
    "epoch zero in csv": (imp("timestamp,open,high,low,close\n0,1,2,1,1\n"), "is not a date"),
    "underlying blank": (lambda e, m: ["data", "import", "--csv", e.file("c.csv", CANDLES), "--underlying", " ",
                                       "--timeframe", "1d"], "underlying"),
    "underlying punct": (lambda e, m: ["data", "import-iv", "--csv", e.file("i.csv", IV), "--underlying",
                                       "B T C!"], "underlying"),
    "import timeframe 2h": (imp(CANDLES, "--timeframe", "2h"), "timeframe"),
    "fetch timeframe 2h": (lambda e, m: ["data", "fetch", "--underlying", "BTC", "--timeframe", "2h", "--start",
                                         "2024-01-01", "--end", "2024-01-02"], "timeframe"),
    # -- option chains and calibrations ----------------------------------------------------------------
    "chain of candles": (lambda e, m: ["data", "import-chain", "--file", e.file("c.csv", CANDLES)],
                         "not a Deribit option chain"),
    "chain other underlying": (lambda e, m: ["data", "import-chain", "--underlying", "BTC", "--file", e.file(
        "eth.csv", "instrument_name,creation_timestamp,underlying_price,mark_price,bid_price,ask_price\n"
                   "ETH-26JAN24-2400-C,1704712781414,2240.5,0.01,0.009,0.011\n")], "not BTC"),
    "chain of puts": (lambda e, m: ["data", "import-chain", "--file", e.file(
        "puts.csv", "instrument_name,creation_timestamp,underlying_price,mark_price,bid_price,ask_price\n"
                    "ETH-26JAN24-2000-P,1704712781414,2240.5,0.01,0.009,0.011\n")], "no calls"),
    "chain missing": (lambda e, m: ["data", "import-chain", "--file", str(e.root / "none.csv.gz")], "does not exist"),
    "calibrate nothing": (lambda e, m: ["calibrate", "--underlying", "BTC"], "no stored BTC chain snapshots"),
    "realism nothing": (lambda e, m: ["realism"], "no chain snapshots"),
    "calibration unknown": (bt("--calibration", "BTC-v9"), "no calibration 'BTC-v9'"),
    "fetch without dates": (lambda e, m: ["data", "fetch", "--underlying", "BTC"], "--start"),
    # -- exports -------------------------------------------------------------------------------------
    "export to a device": (export("--out", "/dev/null"), "not a regular file"),
    "export to a folder": (lambda e, m: ["export", "--out", str(e.exports)], "folder"),
    "export to empty": (export("--out", ""), "empty"),
    "export to a FIFO": (fifo_out, "FIFO"),
    "export under a file": (lambda e, m: (Path("blocker").write_text("x"), ["export", "--out", "blocker/x.csv"])[1],
                            "blocker"),
    "export action typo": (export("--action", "SELL_CAL", "--out", "x.csv"), "SELL_CALL"),
    "export exit style typo": (export("--exit-style", "tp", "--out", "x.csv"), "exit style"),
    "export underlying unknown": (export("--underlying", "XRP", "--out", "x.csv"), "XRP"),
    "export run unknown": (export("--run", "nope", "--out", "x.csv"), "nope"),
    "export batch unknown": (export("--batch", "nope", "--out", "x.csv"), "nope"),
    "export format": (export("--format", "xlsx", "--out", "x.xlsx"), "format"),
    "export table": (export("--table", "trades", "--out", "x.csv"), "table"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_error_line_and_changes_nothing(name: str, env: Env, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    build, expected = CASES[name]
    before = digest(env)
    argv = build(env, monkeypatch)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse usage errors
        code = exit_.code
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (argv, code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "Traceback" not in out
    assert expected.lower() in lines[0].lower(), lines[0]
    (env.root / ".env").unlink(missing_ok=True)
    monkeypatch.setenv("DUCKDB_PATH", str(env.db))
    monkeypatch.setenv("TRAINING_DATA_DIR", str(env.exports))
    assert digest(env) == before, f"{name}: the store or the export folder changed"


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 120
