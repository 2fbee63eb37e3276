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
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mlflow.entities import Metric

from losslab.tracking import disk
from losslab.tracking.redact import redact_text

SPILL_DIR = "mlflow_spill"
RECORDS = "spill.jsonl"
REPLAYED = "spill.replayed.jsonl"
T = TypeVar("T")
FORMAT = 1  # the header's "format": a reader refuses a spill of a format it does not know


class Spill:
    """Append-only record of one run's unsent tracking calls.

    A full disk costs no record and leaves no partial one: a record that does not fit is cut
    off the file again, the whole folder moves to :func:`losslab.tracking.disk.elsewhere`
    (another filesystem) and is written there; with no room anywhere, records wait in memory
    for the next write that fits, and the file is never left empty or cut mid-line."""

    def __init__(
        self, folder: str | Path, uri: str, run_id: str, create: Mapping[str, Any] | None = None
    ) -> None:
        """``create``: how to create the run (experiment, tags, start time) when the store
        never saw it; replay creates it and records into the new run."""
        self.folder = Path(folder)
        self.path = self.folder / RECORDS
        self.run_id = run_id
        self.moved_from: Path | None = None  # the folder whose disk was full
        self.held: list[str] = []  # records no disk had room for yet, in order
        self.lost_files = 0  # files (artifacts, the model) no disk had room for
        self._lock = threading.RLock()  # training and watch threads both append
        self._files = 0
        self._told_full = False
        if not self.path.exists():
            header = {"kind": "run", "format": FORMAT, "uri": redact_text(uri), "run_id": run_id}
            self._append({**header, "create": dict(create)} if create else header)

    # -- writing, with room or without ------------------------------------------------------
    def _append(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            self.held.append(json.dumps(record) + "\n")
            self._room_for(self._write_held)

    def _write_held(self) -> None:
        """Append the held records whole, or leave the file as it was."""
        self.folder.mkdir(parents=True, exist_ok=True)
        size = self.path.stat().st_size if self.path.exists() else None
        try:
            with self.path.open("a") as f:
                f.write("".join(self.held))
                f.flush()
        except OSError:
            if size is None:  # never a file without its header
                self.path.unlink(missing_ok=True)
            else:
                os.truncate(self.path, size)
            raise
        self.held.clear()

    def _room_for(self, write: Callable[[], T]) -> T | None:
        """``write()``; on a full disk, again in a folder elsewhere; None if no disk has room
        (a held record stays held)."""
        with self._lock:
            try:
                return write()
            except OSError as err:
                if not disk.is_full(err):
                    raise
                full = disk.DiskFull(self.folder)
            if self.moved_from is None and self._move(disk.elsewhere(self.run_id), full):
                return self._room_for(write)
            if not self._told_full:
                print(f"{full}; no other disk has room: kept in memory", file=sys.stderr)
                self._told_full = True
            return None

    def _move(self, target: Path, full: disk.DiskFull) -> bool:
        """Copy the folder to ``target`` and write there from now on (freeing the full disk)."""
        try:
            if self.folder.exists():
                shutil.copytree(self.folder, target, dirs_exist_ok=True)
            target.mkdir(parents=True, exist_ok=True)
        except OSError:
            shutil.rmtree(target, ignore_errors=True)
            return False
        shutil.rmtree(self.folder, ignore_errors=True)
        self.moved_from, self.folder, self.path = self.folder, target, target / RECORDS
        print(f"{full}; spilling into {target} instead", file=sys.stderr)
        return True

    def _new_file(self, name: str) -> Path:
        self._files += 1
        return Path("files") / str(self._files) / name

    def _write_file(self, relative: Path, write: Callable[[Path], Any]) -> str | None:
        """``write(path)`` for a file of the spill; a partly written one removed."""

        def attempt() -> str:
            target = self.folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                write(target)
            except OSError:
                shutil.rmtree(target, ignore_errors=True)
                target.unlink(missing_ok=True)
                raise
            return str(relative)

        written = self._room_for(attempt)
        self.lost_files += written is None
        return written

    # -- what a run records -----------------------------------------------------------------
    def metrics(self, points: Iterable[Metric]) -> None:
        rows = [[m.key, m.value, m.timestamp, m.step] for m in points]
        if rows:
            self._append({"kind": "metrics", "points": rows})

    def params(self, params: Mapping[str, str]) -> None:
        self._append({"kind": "params", "params": dict(params)})

    def tags(self, tags: Mapping[str, str]) -> None:
        self._append({"kind": "tags", "tags": dict(tags)})

    def artifact(self, path: str | Path, artifact_path: str | None) -> None:
        source = Path(path)
        copy = shutil.copytree if source.is_dir() else shutil.copy2
        name = self._write_file(self._new_file(source.name), lambda t: copy(source, t))
        if name is not None:
            self._append({"kind": "artifact", "file": name, "artifact_path": artifact_path})

    def text(self, text: str, artifact_file: str) -> None:
        relative = self._new_file(Path(artifact_file).name)
        name = self._write_file(relative, lambda target: target.write_text(text))
        parent = str(Path(artifact_file).parent)
        if name is not None:
            self._append(
                {
                    "kind": "artifact",
                    "file": name,
                    "artifact_path": None if parent == "." else parent,
                }
            )

    def model(self, model: Any, input_example: Any, encoding: Any = None) -> None:
        """The Keras file and the example; with ``encoding``, it as JSON and the raw example
        rows as Parquet (their column types kept), for a model taking raw rows."""
        import numpy as np

        if self._write_file(Path("model.keras"), model.save) is None:
            return
        if encoding is None:
            example = self._write_file(
                Path("input_example.npy"), lambda t: np.save(t, np.asarray(input_example))
            )
            if example is not None:
                self._append({"kind": "model", "file": "model.keras", "example": example})
            return
        saved = self._write_file(
            Path("encoding.json"), lambda t: t.write_text(json.dumps(encoding))
        ) and self._write_file(Path("input_example.parquet"), input_example.to_parquet)
        if saved:
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


class SpillError(ValueError):
    """A spill folder that cannot be replayed; the message names the file and why."""


# what each record must hold, and the fields that name a file inside the spill folder
FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "metrics": {"points": list},
    "params": {"params": dict},
    "tags": {"tags": dict},
    "artifact": {"file": str, "artifact_path": (str, type(None))},
    "model": {"file": str, "example": str},
    "status": {"status": str},
}
FILE_FIELDS = ("file", "example", "encoding")
STATUSES = ("FINISHED", "FAILED", "KILLED")


@dataclass
class Spilled:
    """A spill file as read: its header, the records that can be replayed (with their line
    numbers), and each line left out with why."""

    header: dict[str, Any]
    items: list[tuple[int, dict[str, Any]]]
    skipped: list[tuple[int, str]]


def read(folder: str | Path, strict: bool = False) -> Spilled:
    """Read and check every line of ``folder``'s spill before anything is written.

    The file is data from disk (a crash may cut its last line, a person may edit it), so
    nothing in it is trusted: the header must be a run of a known format; a record must be
    JSON of a known kind with its fields' types; a file it names must lie inside the folder
    (no absolute path, no ``..`` out of it). A line that fails is left out and named, or with
    ``strict`` refuses the whole spill. Raises :class:`SpillError`."""
    folder = Path(folder)
    lines = list(_lines(folder))
    if not lines:
        raise SpillError(f"{folder / RECORDS} is empty: the run spilled nothing to replay")
    number, header = lines[0]
    why = _header_problem(header)
    if why is not None:
        raise SpillError(f"{folder / RECORDS} line {number}: {why}")
    items, skipped = [], []
    for number, item in lines[1:]:
        why = _record_problem(item, folder)
        if why is None:
            items.append((number, item))
        elif strict:
            raise SpillError(f"{folder / RECORDS} line {number}: {why}")
        else:
            skipped.append((number, why))
    return Spilled(header, items, skipped)


def _lines(folder: Path) -> Iterator[tuple[int, Any]]:
    path = folder / RECORDS
    if not path.is_file():
        done = folder / REPLAYED
        hint = " (already replayed)" if done.is_file() else ""
        raise SpillError(f"no spill file {path}{hint}")
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as err:
                yield number, f"not JSON ({err.msg} at column {err.colno})"


def _header_problem(header: Any) -> str | None:
    if isinstance(header, str):
        return header
    if not isinstance(header, dict) or header.get("kind") != "run":
        return "the first record must be the run's header (kind: run)"
    if header.get("format", FORMAT) != FORMAT:
        return f"format {header.get('format')!r}; this losslab reads format {FORMAT}"
    if not isinstance(header.get("uri"), str) or not isinstance(header.get("run_id"), str):
        return "the header needs the store's uri and the run_id, as strings"
    return None


def _record_problem(item: Any, folder: Path) -> str | None:
    if isinstance(item, str):
        return item
    if not isinstance(item, dict) or item.get("kind") not in FIELDS:
        kind = item.get("kind") if isinstance(item, dict) else type(item).__name__
        return f"unknown record kind {kind!r}; known: {sorted(FIELDS)}"
    for key, types in FIELDS[item["kind"]].items():
        if not isinstance(item.get(key), types):
            return f"{item['kind']} record without a valid {key!r}"
    for key in FILE_FIELDS:
        if key in item and not _inside(folder, item[key]):
            return f"{key}={item[key]!r} lies outside the spill folder; not replayed"
    if item["kind"] == "status" and item["status"] not in STATUSES:
        return f"status {item['status']!r}; one of {list(STATUSES)}"
    return None


def _inside(folder: Path, name: str) -> bool:
    """Whether ``name`` is a relative path that stays inside ``folder`` once resolved."""
    try:
        if not name or Path(name).is_absolute():
            return False
        root = folder.resolve()
        return (root / name).resolve().is_relative_to(root) and (root / name).exists()
    except (ValueError, OSError):  # a NUL byte, a name too long: no file of the spill
        return False


def has_records(folder: str | Path) -> bool:
    """Whether ``folder`` holds a spill with a readable header (an empty or cut-off file,
    as a full disk leaves, holds none: the run it belonged to can be ended as dead)."""
    try:
        return _header_problem(next(_lines(Path(folder)))[1]) is None
    except (SpillError, StopIteration, OSError):
        return False
