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

import logging
import os
import threading
import time
from typing import Any

import keras

from losslab.tracking import layout as layouts

log = logging.getLogger(__name__)


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
    it (the pipeline passes its job's run), or an MLflow run (``mlflow.start_run()``, an
    ``mlflow.entities.Run``) to record into and leave open.

    ``layout="neptune"``: the keys neptune-exporter gives a migrated Neptune history
    (:mod:`losslab.tracking.layout`; ``prefix`` is Neptune's base namespace, ``training`` by
    default), and Neptune's params at train begin; epoch time and samples per second are not
    recorded there.

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
        layout: str = "losslab",
    ) -> None:
        super().__init__()
        if int(every_n_batches) < 1:
            raise ValueError(f"every_n_batches={every_n_batches}: a whole number, at least 1")
        self.every_n_batches = int(every_n_batches)
        self.prefix, self.batch_prefix = prefix, prefix + batch_prefix
        self.layout = layouts.make(layout, prefix, batch_prefix)
        self.run_name = run_name
        self.batch_size, self.samples_per_epoch = batch_size, samples_per_epoch
        self._attach_to = _mlflow_run_id(run)  # an MLflow run: attached at each fit
        self.run = None if self._attach_to else run
        self._given = self.run is not None
        self._val_step = 0  # validation batches of the validations before this one
        self._val_batches = 0
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
        self._val_step = self._val_batches = 0
        self._lock, self._first_epoch = threading.Lock(), True
        if self._given:
            self._log_layout_params()
            return
        import mlflow

        from losslab.tracking import session
        from losslab.tracking.run import MLFLOW_RUN_ID_ENV

        session.end_if_left_open(self.run)
        active = mlflow.active_run()
        given = self._attach_to or (active.info.run_id if active else None)
        given = given or os.environ.get(MLFLOW_RUN_ID_ENV)
        self.run = session.start(self.run_name) if given is None else session.attach(given)
        self._log_layout_params()

    def _log_layout_params(self) -> None:
        """The layout's params (Neptune's fit params and optimizer config); a run that has
        them from an earlier fit with other values keeps those (MLflow params never change)."""
        if self.layout.namespace is None:  # losslab's layout: the caller logs its params
            return
        optimizer = getattr(self.model, "optimizer", None)
        config = optimizer.get_config() if optimizer is not None else {}
        params = self.layout.params(self.params or {}, config)
        from mlflow.exceptions import MlflowException

        try:
            self.run.log_params(params)
        except MlflowException as err:
            log.warning("params already in run %s kept: %s", self.run_id, err)

    def on_train_end(self, logs=None) -> None:
        from losslab.tracking import session

        self.record_end()
        self._lock = None  # an evaluate() after fit records nothing
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
            if logs and step % self.every_n_batches == 0 and self.layout.batch is not None:
                self.run.writer.add(step, logs, self.layout.batch)

    def on_test_begin(self, logs=None) -> None:
        self._val_batches = 0

    def on_test_batch_end(self, batch: int, logs=None) -> None:
        """Validation batches, where the layout records them (Neptune's ``log_on_batch``),
        at step = validation batches of earlier validations + this one's index."""
        if self.layout.val_batch is None or self._lock is None:
            return
        with self._lock:
            self._val_batches = max(self._val_batches, batch + 1)
            if logs:
                self.run.writer.add(self._val_step + batch, logs, self.layout.val_batch)

    def on_test_end(self, logs=None) -> None:
        self._val_step += self._val_batches
        self._val_batches = 0

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
        self.run.writer.add(epoch, values, self.layout.epoch)
        self.run.writer.flush(wait=False)

    def _samples_per_epoch(self) -> int | None:
        if self.samples_per_epoch:
            return self.samples_per_epoch
        steps = (self.params or {}).get("steps")
        return self.batch_size * steps if self.batch_size and steps else None


def _mlflow_run_id(run: Any) -> str | None:
    """The id of an MLflow run (``mlflow.ActiveRun``, ``mlflow.entities.Run``); None for a
    :class:`~losslab.tracking.run.TrackedRun` or None. Anything else (a Neptune run) is
    refused here, before training."""
    if run is None or hasattr(run, "writer"):
        return None
    info = getattr(run, "info", None)
    if info is None or not hasattr(info, "run_id"):
        raise TypeError(
            f"run={type(run).__name__}: an MLflow run (mlflow.start_run(), "
            "MlflowClient().get_run(id)) or None (the active run, or one of its own)"
        )
    return info.run_id
