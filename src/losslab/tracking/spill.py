"""What a run could not send to its tracking store, kept on disk until it can be.

When the store has been unreachable for longer than ``tracking.offline_after_s``, a run stops
talking to it and appends everything it still has to record to ``<job output>/mlflow_spill/``:
``spill.jsonl`` (metric points, tags, artifacts, the model, the final status, in order) and
copies of the files. A run that could not reach its store at start
(``tracking.if_unreachable=offline``) spills from its first point, with what is needed to
create it. ``losslab-replay <folder>`` (``python -m losslab.tracking.replay``) writes it all
into the same run once the store is back. Each record replayed is noted in
``spill.progress``, so a replay that fails half-way and is run again goes on where it stopped;
metric points the store already holds are skipped; a folder replayed in full is marked done.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric

from losslab.tracking.redact import redact_text

SPILL_DIR = "mlflow_spill"
RECORDS = "spill.jsonl"
REPLAYED = "spill.replayed.jsonl"


class Spill:
    """Append-only record of one run's unsent tracking calls."""

    def __init__(
        self, folder: str | Path, uri: str, run_id: str, create: Mapping[str, Any] | None = None
    ) -> None:
        """``create``: how to create the run (experiment, tags, start time) when the store
        never saw it; replay creates it and records into the new run."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / RECORDS
        self._lock = threading.Lock()
        self._files = 0
        if not self.path.exists():
            header = {"kind": "run", "uri": redact_text(uri), "run_id": run_id}
            self._append({**header, "create": dict(create)} if create else header)

    def _append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record) + "\n"
        with self._lock, self.path.open("a") as f:  # training and watch threads both append
            f.write(line)

    def _copy(self, source: Path) -> str:
        self._files += 1
        target = self.folder / "files" / str(self._files) / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
        return str(target.relative_to(self.folder))

    def metrics(self, points: Iterable[Metric]) -> None:
        rows = [[m.key, m.value, m.timestamp, m.step] for m in points]
        if rows:
            self._append({"kind": "metrics", "points": rows})

    def params(self, params: Mapping[str, str]) -> None:
        self._append({"kind": "params", "params": dict(params)})

    def tags(self, tags: Mapping[str, str]) -> None:
        self._append({"kind": "tags", "tags": dict(tags)})

    def artifact(self, path: str | Path, artifact_path: str | None) -> None:
        self._append(
            {"kind": "artifact", "file": self._copy(Path(path)), "artifact_path": artifact_path}
        )

    def text(self, text: str, artifact_file: str) -> None:
        self._files += 1
        target = self.folder / "files" / str(self._files) / Path(artifact_file).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        parent = str(Path(artifact_file).parent)
        self._append(
            {
                "kind": "artifact",
                "file": str(target.relative_to(self.folder)),
                "artifact_path": None if parent == "." else parent,
            }
        )

    def model(self, model: Any, input_example: Any, encoding: Any = None) -> None:
        """The Keras file and the example; with ``encoding``, it as JSON and the raw example
        rows as Parquet (their column types kept), for a model taking raw rows."""
        import numpy as np

        model.save(self.folder / "model.keras")
        if encoding is None:
            np.save(self.folder / "input_example.npy", np.asarray(input_example))
            self._append({"kind": "model", "file": "model.keras", "example": "input_example.npy"})
            return
        (self.folder / "encoding.json").write_text(json.dumps(encoding))
        input_example.to_parquet(self.folder / "input_example.parquet")
        self._append(
            {
                "kind": "model",
                "file": "model.keras",
                "example": "input_example.parquet",
                "encoding": "encoding.json",
            }
        )

    def status(self, status: str) -> None:
        self._append({"kind": "status", "status": status})


def records(folder: str | Path) -> Iterator[dict[str, Any]]:
    path = Path(folder) / RECORDS
    if not path.is_file():
        done = Path(folder) / REPLAYED
        hint = " (already replayed)" if done.is_file() else ""
        raise FileNotFoundError(f"no spill file {path}{hint}")
    with path.open() as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
