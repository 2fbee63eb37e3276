"""The Keras callback that records every batch and every epoch of a fit to MLflow.

It replaces the pattern of one synchronous ``log_metric`` per metric per batch: here a batch
costs one deque append, and a :class:`~losslab.tracking.writer.MetricWriter` thread sends the
points in ``log_batch`` requests. Unlike ``mlflow.keras.MlflowCallback`` it logs batches and
epochs together, and gives validation metrics their epoch as step.
"""

from __future__ import annotations

import time

import keras

from losslab.tracking.writer import MetricWriter


class MlflowMetricsLogger(keras.callbacks.Callback):
    """Batch metrics at step = global batch index, epoch metrics at step = epoch.

    Each epoch also records ``learning_rate``, ``epoch_time_s`` and ``samples_per_second``.
    ``on_train_end`` waits until every point is stored, or until the store has been
    unreachable for ``flush_timeout_s`` (the run then spills what is left). ``prefix`` goes in
    front of every key (``fold_1/`` when one run trains a model per validation fold).
    """

    def __init__(
        self,
        writer: MetricWriter,
        every_n_batches: int = 1,
        batch_prefix: str = "batch/",
        samples_per_epoch: int | None = None,
        flush_timeout_s: float | None = None,
        prefix: str = "",
    ) -> None:
        super().__init__()
        self.writer = writer
        self.every_n_batches = every_n_batches
        self.batch_prefix = prefix + batch_prefix
        self.prefix = prefix
        self.samples_per_epoch = samples_per_epoch
        self.flush_timeout_s = flush_timeout_s
        self.global_step = 0
        self._epoch_start = 0.0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if logs and self.global_step % self.every_n_batches == 0:
            self.writer.add(self.global_step, logs, self.batch_prefix)
        self.global_step += 1

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        elapsed = time.perf_counter() - self._epoch_start
        values = dict(logs or {})
        values["epoch_time_s"] = elapsed
        if self.samples_per_epoch:
            values["samples_per_second"] = self.samples_per_epoch / max(elapsed, 1e-9)
        if "learning_rate" not in values:
            values["learning_rate"] = float(
                keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            )
        self.writer.add(epoch, values, self.prefix)
        self.writer.flush(wait=False)

    def on_train_end(self, logs=None) -> None:
        self.writer.wait_stored(self.flush_timeout_s)
