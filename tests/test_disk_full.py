"""A full disk: the store and the job's outputs on a small filesystem (a tmpfs the test
mounts and fills), and the spill's own writes failing at any byte."""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient
from mlflow.entities import Metric

from losslab import data
from losslab.config import to_objects
from losslab.tracking import disk
from losslab.tracking.spill import RECORDS, Spill, has_records, read
from tests.helpers import REPO, compose

SMALL_DISK = "4m"  # room for a new store, its first epochs and the job's folder


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of ``SMALL_DISK`` mounted for the test, unmounted after it."""
    folder = tmp_path / "small"
    folder.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command to make a small filesystem")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {made.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem is full; return it (deleting it frees the room)."""
    filler = folder / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC
    return filler


def _wait_for_stored_epoch(store: Path, proc: subprocess.Popen) -> None:
    from tests.test_faults import _wait_for_stored_epoch as wait

    wait(store, proc)


@pytest.mark.slow
def test_a_full_disk_under_store_and_outputs_is_told_once_and_loses_no_point(tmp_path, small_disk):
    """The store (./mlflow.db) and the job's outputs fill up after the first epoch: one line
    names the store's file and the room left, points wait in memory, then go to a spill on
    another filesystem ($TMPDIR); the job's model file cannot be written: the run ends
    FAILED, exit 1, one line. Once room is made, replay gives the run every point."""
    elsewhere = tmp_path / "tmp"
    elsewhere.mkdir()
    epochs, batch = 8, 16
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "train.py"),
            "debug=default",
            f"trainer.epochs={epochs}",
            f"trainer.batch_size={batch}",
            "tracking.offline_after_s=3",
        ],
        cwd=small_disk,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(elsewhere)},
    )
    store = small_disk / "mlflow.db"
    _wait_for_stored_epoch(store, proc)
    filler = fill(small_disk)
    _, stderr = proc.communicate(timeout=400)

    assert proc.returncode == 1, stderr
    lines = stderr.splitlines()
    told = [line for line in lines if f"disk full: {store} (" in line]
    assert len(told) == 1 and " B free)" in told[0], stderr
    assert lines[-1].startswith(f"error: disk full: {small_disk}/outputs/runs/"), stderr
    assert "model.keras" in lines[-1]
    assert "Traceback" not in stderr and len(lines) < 12, stderr
    assert [p for p in small_disk.rglob(RECORDS) if p.stat().st_size == 0] == []
    (spilled,) = (elsewhere / disk.ELSEWHERE).iterdir()
    assert f"losslab-replay {spilled}" in stderr

    filler.unlink()
    replay = [sys.executable, "-m", "losslab.tracking.replay", str(spilled)]
    replayed = subprocess.run(replay, capture_output=True, text=True, timeout=300)
    assert replayed.returncode == 0, replayed.stderr
    client = MlflowClient(f"sqlite:///{store}")
    (run,) = client.search_runs([client.get_experiment_by_name("losslab").experiment_id])
    assert run.info.run_id == spilled.name
    assert run.info.status == "FAILED"
    assert "disk full" in run.data.tags["losslab.error"]
    cfg = to_objects(compose(tmp_path))
    steps = math.ceil(len(data.load(cfg.data, cfg.seed, tmp_path).x_train) / batch)
    history = client.get_metric_history(run.info.run_id, "batch/loss")
    assert sorted(m.step for m in history) == list(range(epochs * steps))
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == epochs


# -- the spill's own writes, failing at any byte (fast) -------------------------------------
class Budget:
    """``room`` bytes left on a disk: a write past it lands what fits, then fails ENOSPC."""

    def __init__(self, room: int) -> None:
        self.room = room

    def limit(self, f):
        write = f.write

        def limited(text: str) -> int:
            size = len(text.encode())
            if size > self.room:
                write(text[: self.room])  # what fits lands, as on a real disk
                self.room = 0
                f.flush()
                raise OSError(errno.ENOSPC, "No space left on device")
            self.room -= size
            return write(text)

        f.write = limited
        return f


@settings(max_examples=60, deadline=None)
@given(
    room=st.integers(0, 2500),
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    room_elsewhere=st.booleans(),
)
def test_a_spill_on_a_full_disk_keeps_whole_records_in_order_and_loses_none(
    tmp_path_factory, room, sizes, room_elsewhere
):
    """Whatever byte the disk fills at: the spill file (in its folder, or moved to the
    temporary folder's disk when that has room) holds only whole records in order, is never
    empty, and every point is in it or still held in memory."""
    base = tmp_path_factory.mktemp("full")
    budget, original = Budget(room), Path.open
    folder = base / "job"

    def on_a_small_disk(self, *args, **kwargs):
        f = original(self, *args, **kwargs)
        full = self.name == RECORDS and (folder in self.parents or not room_elsewhere)
        return budget.limit(f) if full else f

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(base / "elsewhere"))
        patch.setattr(Path, "open", on_a_small_disk)
        written = Spill(folder, "sqlite:///x.db", "run1")
        step = 0
        for n in sizes:
            written.metrics(Metric("batch/loss", float(i), 0, i) for i in range(step, step + n))
            step += n

    if written.path.exists():
        text = written.path.read_text()
        assert text.endswith("\n")
        stored = [
            p[3] for _, item in read(written.folder, strict=True).items for p in item["points"]
        ]
    else:
        assert json.loads(written.held[0])["kind"] == "run"
        stored = []
    held = [p[3] for line in written.held for p in json.loads(line).get("points", [])]
    assert stored + held == list(range(step))
    assert has_records(written.folder) == written.path.exists()
    assert not room_elsewhere or not written.held  # a disk with room took everything
    if written.moved_from is not None:
        assert written.folder == base / "elsewhere" / disk.ELSEWHERE / "run1"
        assert not written.moved_from.exists()


class FullStream:
    """A log file's stream on a disk with no room left."""

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_job_log_on_a_full_disk_is_told_once_then_left(tmp_path, capsys):
    """The job's log file (Hydra's file handler is this class): one line naming it and the
    room left, not logging's traceback for every record."""
    handler = disk.LogFile(tmp_path / "train.log")
    logger = logging.getLogger("tests.full_disk")
    logger.addHandler(handler)
    try:
        logger.warning("fits")
        handler.stream.close()
        handler.stream = FullStream()
        for _ in range(5):
            logger.warning("does not fit")
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert err.count(f"disk full: {tmp_path / 'train.log'} (") == 1, err
    assert "Traceback" not in err and "Logging error" not in err
    assert (tmp_path / "train.log").read_text().count("fits") == 1
