"""losslab's Keras 3 callback for any training script: ``from losslab.keras import MlflowLogger``.

    with mlflow.start_run():
        model.fit(x, y, validation_data=(x_val, y_val), callbacks=[MlflowLogger()])

Every batch and epoch metric goes to MLflow through a background writer
(:class:`losslab.tracking.callback.MlflowLogger`, the pipeline's callback); this class adds
what a run records at train end, on request, through :mod:`losslab.recording`, the same code
that records a pipeline run's end.
"""

from __future__ import annotations

from typing import Any

from losslab import recording
from losslab.tracking import callback

__all__ = ["MlflowLogger"]


class MlflowLogger(callback.MlflowLogger):
    """Every batch and epoch of a fit (see the base class for the points and the run), and at
    train end, on request: the model with signature and input example (``log_model``; the
    example from ``input_example``, else the first rows of ``validation_data``), learning
    curves and, with ``validation_data``, the threshold chosen on it (the highest minority
    recall at a false-positive rate of at most ``max_fpr``) with its confusion matrix, ROC and
    PR plots (``plots``), and the model's config and summary (``log_model_config``). Options it
    cannot honour raise here, before training."""

    def __init__(  # noqa: PLR0913 - keyword options, as Keras' own callbacks take them
        self,
        every_n_batches: int = 1,
        *,
        log_model: bool = False,
        plots: bool = False,
        log_model_config: bool = False,
        validation_data: tuple[Any, Any] | None = None,
        input_example: Any = None,
        max_fpr: float = 0.01,
        **options: Any,
    ) -> None:
        super().__init__(every_n_batches, **options)
        self.at_end = recording.AtTrainEnd(
            log_model, plots, log_model_config, validation_data, input_example, max_fpr
        )
        self.at_end.check()

    def record_end(self) -> None:
        recording.record(self.run, self.model, self.history_seen, self.at_end)
