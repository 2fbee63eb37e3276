"""The rows of figure 1: each fits a fresh reference MLP while recording every batch and epoch
metric one way, and returns the seconds of ``fit`` plus the final flush and the points it
recorded (read back from the MLflow store, or counted in W&B's and Neptune's offline files).

A row that cannot run raises :class:`Unavailable` with the text the table shows instead of a
figure: a package that is not installed, or a callback that fails on Keras 3.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FEATURES = 784
BATCH_KEYS = 5  # loss, accuracy, auc, precision, recall
EXPERIMENT = "bench-logging"


class Unavailable(Exception):
    """The row's text instead of a figure."""


@dataclass(frozen=True)
class Workload:
    """One fit: the data, the batch size, and where the rows record."""

    x: Any
    y: Any
    batch: int
    uri: str  # the SQLite store the MLflow rows record into
    folder: Path  # scratch for offline files
    epochs: int = 3

    @property
    def steps(self) -> int:
        return self.epochs * math.ceil(len(self.x) / self.batch)

    def fit(self, model, callbacks: list | None = None) -> None:
        model.fit(
            self.x,
            self.y,
            batch_size=self.batch,
            epochs=self.epochs,
            verbose=0,
            callbacks=callbacks or [],
        )


@dataclass(frozen=True)
class Measured:
    seconds: float
    points: int | None = None  # recorded points read back
    expected: int | None = None  # what the callback's design records


Row = Callable[[Workload], Measured]


def build_model():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((FEATURES,))
    x = inputs
    for units in (512, 512, 128, 128):
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(0.75)(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile(
        optimizer="adam",
        loss="binary_crossentropy",
        metrics=[
            "accuracy",
            keras.metrics.AUC(name="auc"),
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
        ],
    )
    return model


def require(module: str, pip: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise Unavailable(f"not installed: pip install {pip}")


def import_ahead(modules: Iterable[str]) -> None:
    """The rows' imports, done before any row is timed; a missing one is left to its row."""
    for module in modules:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@contextlib.contextmanager
def on_keras_3() -> Iterator[None]:
    """A third-party callback's failure becomes the row's text."""
    try:
        yield
    except Exception as exc:
        raise Unavailable(f"cannot run on Keras 3: {first_line(exc)}") from exc


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0


def experiment_id(uri: str, artifacts: Path) -> str:
    """The benchmark's experiment in ``uri``, its artifacts in the scratch folder."""
    from mlflow import MlflowClient

    from losslab.tracking.run import experiment_id as find_or_create

    return find_or_create(MlflowClient(uri), EXPERIMENT, artifacts.as_uri())


def stored_points(uri: str, run_id: str) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    keys = client.get_run(run_id).data.metrics
    return sum(len(client.get_metric_history(run_id, k)) for k in keys)


@contextlib.contextmanager
def fluent_run(work: Workload) -> Iterator[Any]:
    """``mlflow.start_run()`` in the benchmark's experiment of ``work.uri``."""
    import mlflow

    mlflow.set_tracking_uri(work.uri)
    try:
        exp = experiment_id(work.uri, work.folder / "artifacts")
        with mlflow.start_run(experiment_id=exp) as run:
            yield run
    finally:
        mlflow.set_tracking_uri(None)


def no_callback(work: Workload) -> Measured:
    model = build_model()
    with Stopwatch() as watch:
        work.fit(model)
    return Measured(watch.seconds)


def naive_callback():
    """The Neptune pattern ported to MLflow: a synchronous call per metric per batch."""
    import keras
    import mlflow

    class Naive(keras.callbacks.Callback):
        step = 0

        def on_train_batch_end(self, batch, logs=None):
            for key, value in (logs or {}).items():
                mlflow.log_metric(f"batch_{key}", value, step=self.step)
            self.step += 1

        def on_epoch_end(self, epoch, logs=None):
            for key, value in (logs or {}).items():
                mlflow.log_metric(key, value, step=epoch)

    return Naive()


def async_callback():
    """MLflow's async logging: ``log_metric(..., synchronous=False)`` per metric per batch."""
    import keras
    import mlflow

    class Async(keras.callbacks.Callback):
        step = 0

        def on_train_batch_end(self, batch, logs=None):
            for key, value in (logs or {}).items():
                mlflow.log_metric(f"batch_{key}", value, step=self.step, synchronous=False)
            self.step += 1

        def on_epoch_end(self, epoch, logs=None):
            for key, value in (logs or {}).items():
                mlflow.log_metric(key, value, step=epoch, synchronous=False)

    return Async()


def fluent_row(work: Workload, callback, expected: int) -> Measured:
    """A callback recording through MLflow's fluent API, then ``flush_async_logging``."""
    import mlflow

    model = build_model()
    with fluent_run(work) as run, Stopwatch() as watch:
        work.fit(model, [callback] if callback is not None else None)
        mlflow.flush_async_logging()
    return Measured(watch.seconds, stored_points(work.uri, run.info.run_id), expected)


def naive(work: Workload) -> Measured:
    return fluent_row(work, naive_callback(), (work.steps + work.epochs) * BATCH_KEYS)


def mlflow_async(work: Workload) -> Measured:
    return fluent_row(work, async_callback(), (work.steps + work.epochs) * BATCH_KEYS)


def mlflow_callback(work: Workload) -> Measured:
    import mlflow

    callback = mlflow.keras.MlflowCallback(log_every_epoch=False, log_every_n_steps=1)
    return fluent_row(work, callback, work.steps * BATCH_KEYS)


def mlflow_autolog(work: Workload) -> Measured:
    """``mlflow.keras.autolog``: every step (which excludes epoch metrics), no model."""
    import mlflow

    mlflow.keras.autolog(log_every_epoch=False, log_every_n_steps=1, log_models=False, silent=True)
    try:
        return fluent_row(work, None, work.steps * BATCH_KEYS)
    finally:
        mlflow.keras.autolog(disable=True)


def losslab_tracked(work: Workload, uri: str | None = None) -> Measured:
    """losslab's callback on a run the caller opened, as the pipeline runs it (``uri``:
    another store); ``on_train_end`` waits until every point is stored."""
    from losslab.keras import MlflowLogger
    from losslab.tracking.run import TrackedRun

    uri = uri or work.uri
    model = build_model()
    with TrackedRun(uri, EXPERIMENT) as run, Stopwatch() as watch:
        work.fit(model, [MlflowLogger(run=run)])
    expected = work.steps * BATCH_KEYS + work.epochs * (BATCH_KEYS + 2)
    stored = stored_points(uri, run.run_id)
    assert stored == expected, ("losslab MlflowLogger(run=...)", uri, stored, expected)
    return Measured(watch.seconds, stored, expected)


def losslab_public(work: Workload) -> Measured:
    """``losslab.keras.MlflowLogger`` in ``mlflow.start_run()``; it waits at train end."""
    from losslab.keras import MlflowLogger

    model = build_model()
    with fluent_run(work) as run, Stopwatch() as watch:
        work.fit(model, [MlflowLogger()])
    expected = work.steps * BATCH_KEYS + work.epochs * (BATCH_KEYS + 2)
    return Measured(watch.seconds, stored_points(work.uri, run.info.run_id), expected)


def losslab_neptune(work: Workload) -> Measured:
    """``losslab.keras.NeptuneCallback(log_on_batch=True)`` in ``mlflow.start_run()``: the
    Neptune row's points under neptune-exporter's keys, through the same writer."""
    from losslab.keras import NeptuneCallback

    model = build_model()
    with fluent_run(work) as run, Stopwatch() as watch:
        work.fit(model, [NeptuneCallback(log_on_batch=True, log_model_summary=False)])
    expected = (work.steps + work.epochs) * BATCH_KEYS + work.epochs  # as Neptune's row
    return Measured(watch.seconds, stored_points(work.uri, run.info.run_id), expected)


def wandb_offline(work: Workload) -> Measured:
    """W&B's ``WandbMetricsLogger(log_freq="batch")`` in an offline run, ``finish`` timed."""
    require("wandb", "wandb")
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    model = build_model()
    folder = tempfile.mkdtemp(prefix="wandb-", dir=work.folder)
    wandb.init(mode="offline", dir=folder, project=EXPERIMENT)
    try:
        with on_keras_3():
            from wandb.integration.keras import WandbMetricsLogger

            callback = WandbMetricsLogger(log_freq="batch")
        with Stopwatch() as watch, on_keras_3():
            work.fit(model, [callback])
            wandb.finish()
    finally:
        wandb.finish()  # no-op once finished
    files = Path(folder).glob("wandb/offline-run-*/run-*.wandb")
    points = sum(wandb_points(settled(f)) for f in files)
    # per batch and per epoch: the compiled metrics and the learning rate
    return Measured(watch.seconds, points, (work.steps + work.epochs) * (BATCH_KEYS + 1))


def settled(path: Path, quiet_s: float = 1.0, limit_s: float = 60.0) -> Path:
    """``path`` once it has stopped growing: ``wandb.finish()`` returns before W&B's core
    process has written the offline file, which it does in the next moments."""
    size, deadline = -1, time.monotonic() + limit_s
    while time.monotonic() < deadline:
        now = path.stat().st_size
        if now == size and now > 7:  # more than the header, and no longer growing
            break
        size = now
        time.sleep(quiet_s)
    return path


def wandb_points(path: Path) -> int:
    """Metric values in an offline ``.wandb`` file (the step counters left out)."""
    from wandb.proto import wandb_internal_pb2

    points = 0
    for raw in leveldb_records(path.read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            keys = (item.key or "/".join(item.nested_key) for item in record.history.item)
            points += sum(
                not k.startswith("_") and k not in ("batch/batch_step", "epoch/epoch") for k in keys
            )
    return points


def leveldb_records(data: bytes, block: int = 32768) -> Iterator[bytes]:
    """The records of a ``.wandb`` file: a 7-byte header, then LevelDB's log format."""
    pos, parts = 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        parts = chunk if kind in (1, 2) else parts + chunk  # full, first | middle, last
        if kind in (1, 4):
            yield parts
            parts = b""


@contextlib.contextmanager
def working_dir(folder: Path) -> Iterator[None]:
    """Neptune's offline mode writes ``.neptune/`` in the working directory."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def neptune_offline(work: Workload) -> Measured:
    """Neptune's ``NeptuneCallback(log_on_batch=True)`` in an offline run, ``stop`` timed."""
    require("neptune_tensorflow_keras", "neptune neptune-tensorflow-keras")
    import neptune

    model = build_model()
    with working_dir(Path(tempfile.mkdtemp(prefix="neptune-", dir=work.folder))):
        run = neptune.init_run(mode="offline")
        try:
            with on_keras_3():
                from neptune_tensorflow_keras import NeptuneCallback

                callback = NeptuneCallback(run=run, log_on_batch=True)
            with Stopwatch() as watch, on_keras_3():
                work.fit(model, [callback])
                run.stop()
        finally:
            run.stop()  # no-op once stopped
        points = neptune_points(Path(".neptune/offline").glob("run__*/data-*.log"))
    # per batch and per epoch the compiled metrics, per epoch the learning rate
    expected = (work.steps + work.epochs) * BATCH_KEYS + work.epochs
    return Measured(watch.seconds, points, expected)


def neptune_points(logs: Iterable[Path]) -> int:
    """Float values appended under ``training/`` in Neptune's offline operation logs."""
    points = 0
    for log in logs:
        for line in filter(str.strip, log.read_text().splitlines()):
            op = json.loads(line)["obj"]
            if op["type"] == "LogFloats" and op["path"][0] == "training":
                points += len(op["values"])
    return points
