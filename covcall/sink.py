"""Where a sweep's results are saved: the store (on the driver), or a buffer a worker hands back for the driver."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class StoreSink:
    """Saves runs and models as they come (the driver: the only writer of the store)."""

    store: Any
    model_dir: Path

    def run(self, result: Any, batch_id: str | None) -> None:
        """Save a BacktestResult, or a run already shaped for the store (`covcall.dataset.RunRows`)."""
        from covcall.dataset import RunRows, run_rows, save_rows
        from covcall.version import code_version

        rows = result if isinstance(result, RunRows) else run_rows(result)
        save_rows(self.store, rows, batch_id=batch_id, code_version=code_version())

    def model(self, model: Any) -> str:
        from covcall.models import save_model

        return save_model(self.store, model, self.model_dir)


@dataclass
class BufferSink:
    """Keeps runs and models in order, so a unit that produced them on a worker can be saved on the driver."""

    items: list[tuple[str, Any, str | None]] = field(default_factory=list)

    def run(self, result: Any, batch_id: str | None) -> None:
        from covcall.dataset import run_rows

        # shaped here, on the worker: the driver's replay only inserts
        self.items.append(("run", run_rows(result), batch_id))

    def model(self, model: Any) -> str:
        self.items.append(("model", model, None))
        return str(model.model_id)  # the id is the model's data hash: the same wherever it is saved

    def replay(self, sink: StoreSink) -> None:
        # a fold's runs and models through one connection (each still its own transaction): one open and one
        # checkpoint of the database for the fold instead of one per run
        with sink.store.writes():
            for kind, obj, batch_id in self.items:
                if kind == "run":
                    sink.run(obj, batch_id)
                else:
                    sink.model(obj)
