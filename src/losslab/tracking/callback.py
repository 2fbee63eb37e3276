"""The Keras callback that records every batch and every epoch of a fit to MLflow.

The points of a fit and the run around them: the pipeline's callback, and the base of the
public one (:class:`losslab.keras.MlflowLogger` adds what a run records at train end, which
needs the domain's plots and evaluation that this layer does not import). A batch costs one
deque append; a :class:`~losslab.tracking.writer.MetricWriter` thread sends the points in
``log_batch`` requests, keeps them while the store is away, and the run spills them to disk
for ``losslab replay`` when it stays away. Unlike ``mlflow.keras.MlflowCallback`` it logs
batches and epochs together and gives validation metrics their epoch as step.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import keras


class MlflowLogger(keras.callbacks.Callback):
    """Batch metrics at step = global batch index (``batch/loss``, ...), epoch metrics at
    step = epoch (``loss``, ``val_loss``, ...), and each epoch's ``learning_rate``,
    ``epoch_time_s`` and ``samples_per_second``.

    Records into the active MLflow run (``with mlflow.start_run():`` around ``fit``), else
    records into the run ``mlflow run`` made (``MLFLOW_RUN_ID``), else starts a run in
    MLflow's current tracking URI and experiment and ends it with the fit's outcome
    (:mod:`losslab.tracking.session`). :meth:`record_end` is what a subclass records once
    ``fit`` is over, before the run ends (nothing here). ``prefix`` goes in front of every
    key logged during ``fit`` (not of what train end records); ``every_n_batches`` keeps
    every n-th batch point; ``samples_per_epoch`` (default: ``batch_size`` times the steps
    Keras reports) sets samples per second.

    ``run``: a :class:`~losslab.tracking.run.TrackedRun` opened by the caller, who also ends
    it (the pipeline passes its job's run).

    It is ``async_safe``: on the JAX and PyTorch backends Keras may then call the batch hook
    from worker threads while the next step runs (the hook itself is a locked append, and a
    batch's step comes from its epoch and index, not from the order the calls arrive in);
    TensorFlow, and any other callback in the fit that is not async-safe, keep the calls in
    the training thread.
    """

    async_safe = True

    def __init__(  # noqa: PLR0913 - keyword options, as Keras' own callbacks take them
        self,
        every_n_batches: int = 1,
        *,
        prefix: str = "",
        batch_prefix: str = "batch/",
        run_name: str | None = None,
        batch_size: int | None = None,
        samples_per_epoch: int | None = None,
        run: Any = None,
    ) -> None:
        super().__init__()
        if int(every_n_batches) < 1:
            raise ValueError(f"every_n_batches={every_n_batches}: a whole number, at least 1")
        self.every_n_batches = int(every_n_batches)
        self.prefix, self.batch_prefix = prefix, prefix + batch_prefix
        self.run_name = run_name
        self.batch_size, self.samples_per_epoch = batch_size, samples_per_epoch
        self.run = run
        self._given = run is not None
        self.global_step = 0  # batches of the epochs before this one
        self._batches = 0  # batches of this epoch seen so far
        self._lock: threading.Lock | None = None  # made per fit: the callback stays copyable
        self._first_epoch = True
        self._epoch_start = 0.0
        self._history: dict[str, list[float]] = {}

    @property
    def run_id(self) -> str | None:
        return None if self.run is None else self.run.run_id

    # -- the run --------------------------------------------------------------------------
    def on_train_begin(self, logs=None) -> None:
        self.global_step, self._batches, self._history = 0, 0, {}
        self._lock, self._first_epoch = threading.Lock(), True
        if self._given:
            return
        import mlflow

        from losslab.tracking import session
        from losslab.tracking.run import MLFLOW_RUN_ID_ENV

        session.end_if_left_open(self.run)
        active = mlflow.active_run()
        given = active.info.run_id if active else os.environ.get(MLFLOW_RUN_ID_ENV)
        self.run = session.start(self.run_name) if given is None else session.attach(given)

    def on_train_end(self, logs=None) -> None:
        from losslab.tracking import session

        self.record_end()
        if self._given:
            self.run.writer.wait_stored(self.run.patience.limit_s)
        else:
            session.end(self.run)

    def record_end(self) -> None:
        """What the run records once ``fit`` is over (``self.model``, ``self.history_seen``),
        before it ends: nothing here."""

    @property
    def history_seen(self) -> dict[str, list[float]]:
        """Every epoch value this fit logged, by key."""
        return self._history

    # -- the points -----------------------------------------------------------------------
    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch_start = time.perf_counter()
        self._batches = 0
        steps = (self.params or {}).get("steps")
        if self._first_epoch and steps:  # fit(initial_epoch=k) goes on at batch k * steps
            self.global_step = epoch * steps
        self._first_epoch = False

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        step = self.global_step + batch
        with self._lock:
            self._batches = max(self._batches, batch + 1)
            if logs and step % self.every_n_batches == 0:
                self.run.writer.add(step, logs, self.batch_prefix)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        elapsed = time.perf_counter() - self._epoch_start
        self.global_step += self._batches  # Keras ends every batch hook of the epoch first
        values = dict(logs or {})
        values["epoch_time_s"] = elapsed
        samples = self._samples_per_epoch()
        if samples:
            values["samples_per_second"] = samples / max(elapsed, 1e-9)
        if "learning_rate" not in values:
            values["learning_rate"] = float(
                keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            )
        for key, value in values.items():
            self._history.setdefault(key, []).append(float(value))
        self.run.writer.add(epoch, values, self.prefix)
        self.run.writer.flush(wait=False)

    def _samples_per_epoch(self) -> int | None:
        if self.samples_per_epoch:
            return self.samples_per_epoch
        steps = (self.params or {}).get("steps")
        return self.batch_size * steps if self.batch_size and steps else None
