"""LLM-ready exports: one chat record per decision, and chosen/rejected pairs from counterfactual candidate labels.

Schemas in docs/llm.md. Records are written run by run (memory bounded by the largest run), in decision order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, TextIO

import pandas as pd

from covcall.store import DatasetFilter, Store

LLM_FORMATS = ("chat-jsonl", "preference-jsonl")
TABLE_FOR = {"chat-jsonl": "examples", "preference-jsonl": "candidates"}
MAX_CANDIDATES_SHOWN = 12  # the best by score; the user turn stays a readable size

SYSTEM = ("You manage a covered call: you hold the coin and may sell one Deribit-style call on it when none is open. "
          "Given the market state and the listed calls, answer SELL_CALL with the instrument to sell, or DO_NOTHING, "
          "and say why in one sentence. Premiums are at the bid; fees and settlement follow Deribit.")


def _num(v: Any, fmt: str, missing: str = "n/a") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return missing
    return format(f, fmt) if math.isfinite(f) else missing


def _plain(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return _plain(v.item())
    return v


def state_text(row: Any) -> str:
    """The market state at a decision, as the user turn's first lines."""
    t = pd.Timestamp(row["decision_time"])
    return (f"Time: {t:%Y-%m-%d %H:%M} UTC. Underlying: {row['underlying']} at ${_num(row['spot'], ',.2f')}.\n"
            f"Implied vol {_num(row.get('atm_iv_ann', row.get('iv_ann')), '.1%')}, 30-day realised vol {_num(row.get('rv_ann'), '.1%')}; "
            f"returns: 1 day {_num(row.get('ret_1d'), '+.2%')}, 7 days {_num(row.get('ret_7d'), '+.2%')}, "
            f"30 days {_num(row.get('ret_30d'), '+.2%')}.")


def candidate_table(cands: pd.DataFrame) -> str:
    """The listed calls as a small pipe table (best scores first)."""
    if cands.empty:
        return "No call is listed within the delta and expiry limits."
    top = cands.sort_values("score", ascending=False, kind="mergesort").head(MAX_CANDIDATES_SHOWN)
    lines = ["instrument | strike | days | delta | IV | bid premium % of spot | score"]
    for r in top.itertuples():
        lines.append(f"{r.instrument} | {_num(r.strike, ',.0f')} | {_num(r.dte_days, '.1f')} | {_num(r.delta, '.2f')}"
                     f" | {_num(r.iv_ann, '.1%')} | {_num(r.premium_pct, '.3%')} | {_num(r.score, '.4f')}")
    more = len(cands) - len(top)
    return "\n".join(lines) + (f"\n(and {more} more with lower scores)" if more > 0 else "")


def rationale(row: Any, n_candidates: int) -> str:
    """One sentence from the features that decided it (no look-ahead: nothing after the decision)."""
    if row["action"] == "SELL_CALL":
        return (f"SELL_CALL {row['instrument']}: delta {_num(row.get('delta'), '.2f')}, {_num(row.get('dte'), '.0f')} "
                f"days to expiry, score {_num(row.get('score'), '.4f')}, the best of {n_candidates} listed calls "
                f"that clears the threshold; implied vol {_num(row.get('iv_ann'), '.1%')} against realised "
                f"{_num(row.get('rv_ann'), '.1%')}.")
    reason = str(row.get("reason") or "no call clears the threshold").replace("_", " ")
    return (f"DO_NOTHING: {reason} (best score {_num(row.get('best_score'), '.4f')} among {n_candidates} "
            "listed calls).")


def _decision_key(t: Any) -> int:
    return int(pd.Timestamp(t).value)


def chat_records(examples: pd.DataFrame, candidates: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """One chat record per example row: system, user (state + listed calls), assistant (action + rationale)."""
    by_time = {k: g for k, g in candidates.groupby(candidates["decision_time"].map(_decision_key))} \
        if len(candidates) else {}
    for row in examples.to_dict("records"):
        cands = by_time.get(_decision_key(row["decision_time"]), candidates.iloc[0:0])
        n = int(row.get("candidates")) if row["action"] == "DO_NOTHING" and _finite(row.get("candidates")) \
            else len(cands)
        user = state_text(row) + "\n\nListed calls:\n" + candidate_table(cands) + "\n\nWhat do you do?"
        yield {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user},
                            {"role": "assistant", "content": rationale(row, n)}],
               "metadata": {k: _plain(row.get(k)) for k in (
                   "run_id", "example_no", "decision_time", "underlying", "timeframe", "action", "instrument",
                   "reward", "pnl_vs_hodl", "label_end", "exit_style")}}


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def preference_records(candidates: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Per decision with two or more labelled candidates: the best realised (pnl_vs_hodl_pct) as chosen, the worst
    as rejected, both written as the assistant's answer to the same prompt."""
    if candidates.empty:
        return
    labelled = candidates[candidates["pnl_vs_hodl_pct"].map(_finite)]
    for _, group in labelled.groupby(labelled["decision_time"].map(_decision_key), sort=True):
        if len(group) < 2:
            continue
        order = group.sort_values(["pnl_vs_hodl_pct", "instrument"], kind="mergesort")
        worst, best = order.iloc[0], order.iloc[-1]
        if best["pnl_vs_hodl_pct"] == worst["pnl_vs_hodl_pct"]:
            continue
        first = group.iloc[0]
        prompt = state_text(first) + "\n\nListed calls:\n" + candidate_table(group) + "\n\nWhich call do you sell?"

        def answer(c: Any) -> str:
            return (f"SELL_CALL {c['instrument']}: delta {_num(c['delta'], '.2f')}, {_num(c['dte_days'], '.1f')} days, "
                    f"premium {_num(c['premium_pct'], '.3%')} of spot, score {_num(c['score'], '.4f')}.")

        yield {"prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
               "chosen": [{"role": "assistant", "content": answer(best)}],
               "rejected": [{"role": "assistant", "content": answer(worst)}],
               "metadata": {"run_id": first["run_id"], "decision_time": _plain(pd.Timestamp(first["decision_time"])),
                            "underlying": first["underlying"], "exit_style": first.get("exit_style"),
                            "chosen_instrument": best["instrument"], "rejected_instrument": worst["instrument"],
                            "chosen_pnl_vs_hodl_pct": _plain(best["pnl_vs_hodl_pct"]),
                            "rejected_pnl_vs_hodl_pct": _plain(worst["pnl_vs_hodl_pct"]),
                            "candidates": len(group)}}


def write_llm(store: Store, selection: DatasetFilter, fmt: str, out: TextIO) -> int:
    """Write the selection's records, run by run; returns how many were written."""
    table = TABLE_FOR[fmt]
    n = 0
    for run_id in store.selection_run_ids(table, selection):
        f = replace(selection, run_ids=(run_id,))
        if fmt == "chat-jsonl":
            examples = store.page_rows("examples", f, limit=2**62)
            # the listed calls come from the same run's candidate table, whatever the example filter says
            cands = store.page_rows("candidates", DatasetFilter(run_ids=(run_id,)), limit=2**62)
            records = chat_records(examples, cands)
        else:
            records = preference_records(store.page_rows("candidates", f, limit=2**62))
        for rec in records:
            out.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
            n += 1
    return n
