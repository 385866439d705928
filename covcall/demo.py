"""Demo data for a fresh install: a small synthetic batch, a saved range set and one walk, all offline."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from covcall.batch import run_batch
from covcall.enums import ExitStyle, values
from covcall.ranges import RangeSet, save_range_set
from covcall.store import Store
from covcall.walker import walk

DEMO_RANGES = {
    "name": "demo-regimes",
    "rangeTrain": [
        {"startDate": "2022-01-01", "endDate": "2022-06-30", "note": "first half 2022"},
        {"startDate": "2022-07-01", "endDate": "2022-12-31", "note": "second half 2022"},
    ],
    "rangeTest": {"startDate": "2023-03-01", "endDate": "2023-08-31", "note": "held out"},
    "gap_days": 45,
}

DEMO_BATCH = {
    "name": "demo",
    "underlyings": ["BTC", "ETH"],
    "timeframes": ["1d"],
    "windows": [{"start": "2022-01-01", "end": "2022-12-31", "note": "2022"},
                {"start": "2023-01-01", "end": "2023-12-31", "note": "2023"}],
    "exit_styles": list(values(ExitStyle)),
}


def demo_walk_spec(seed: int = 7) -> dict[str, Any]:
    """A quick walk (daily bars, a 4-point grid) over the demo range set."""
    return {**DEMO_RANGES, "name": "demo", "underlying": "BTC", "timeframe": "1d", "source": "synthetic",
            "metric": "sharpe", "seed": seed,
            "grid": {"delta_range": [[0.10, 0.25], [0.20, 0.35]], "threshold": [0.10, 0.40]}}


def generate_demo_data(store: Store, *, progress: Callable[[float, str], None] | None = None,
                       export_dir: Path | None = None, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fill an empty database so every page has content: 8 backtests, a range set and a walk.

    `defaults` (covcall.config.run_defaults) carry the user's fees, rate and synthetic seed; the demo always
    runs on the synthetic market.
    """
    say = progress or (lambda f, m: None)
    defaults = {**(defaults or {}), "source": "synthetic"}
    seed = int(defaults.get("seed", 7))
    key = "demo:" + hashlib.sha256(json.dumps(defaults, sort_keys=True, default=str).encode()).hexdigest()[:16]
    earlier = _existing(store, key)
    if earlier is not None:  # the same demo is there already: a second click adds nothing
        say(1.0, "demo data already there")
        return {**earlier, "already": True}
    batch = run_batch(DEMO_BATCH, store=store, export_dir=export_dir, defaults=defaults,
                      progress=lambda d, t, m: say(0.6 * d / max(t, 1), f"backtest {d}/{t}: {m}"))
    rs = RangeSet.from_dict(DEMO_RANGES)
    save_range_set(store, rs, overwrite=True)
    say(0.6, "walk: fitting variants on the training ranges")
    result = walk(demo_walk_spec(seed), store=store, defaults=defaults,
                  progress=lambda d, t, m: say(0.6 + 0.4 * d / max(t, 1), f"walk {d}/{t}: {m}"))
    say(1.0, "demo data ready")
    made = {"batch_id": batch.batch_id, "runs": len(batch.runs), "examples": batch.examples,
            "range_set": rs.name, "walk_id": result.walk_id, "best_strategy": result.best_strategy}
    store.set_meta(key, json.dumps(made))
    return {**made, "already": False}


def _existing(store: Store, key: str) -> dict[str, Any] | None:
    """The demo made earlier with the same settings, if its batch, range set and walk are all still stored."""
    raw = store.get_meta(key)
    if raw is None:
        return None
    made = json.loads(raw)
    runs = store.list_runs(batch_id=made["batch_id"])
    if len(runs) != made["runs"] or store.get_walk(made["walk_id"]) is None or \
            made["range_set"] not in store.list_range_sets():
        return None
    return made
