"""losslab's Keras 3 callbacks for any training script: ``from losslab.keras import MlflowLogger``.

    with mlflow.start_run():
        model.fit(x, y, validation_data=(x_val, y_val), callbacks=[MlflowLogger()])

A script written for Neptune changes its import alone: ``from losslab.keras import
NeptuneCallback`` records the keys a Neptune history migrated by neptune-exporter has.

Every batch and epoch metric goes to MLflow through a background writer
(:class:`losslab.tracking.callback.MlflowLogger`, the pipeline's callback); this class adds
what a run records at train end, on request, through :mod:`losslab.recording`, the same code
that records a pipeline run's end.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

from losslab import recording
from losslab.tracking import callback
from losslab.tracking import layout as layouts

__all__ = ["MlflowLogger", "NeptuneCallback"]


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


class NeptuneCallback(callback.MlflowLogger):
    """``neptune_tensorflow_keras.NeptuneCallback``'s signature, recording into MLflow under
    the keys neptune-exporter gives a migrated Neptune history: ``<base_namespace>/train/
    epoch/<metric>``, ``.../validation/epoch/<metric>``, with ``log_on_batch`` also
    ``.../train/batch/<metric>`` and ``.../validation/batch/<metric>``,
    ``.../model/learning_rate`` per epoch, params ``.../fit_params/...`` and
    ``.../model/optimizer_config/...``; at train end the model summary (and with
    ``log_model_diagram`` its diagram, which needs pydot) as artifacts under ``.../model/``.

    ``run``: an MLflow run (``mlflow.start_run()``) to record into, or None: the active run,
    else one of its own, as :class:`MlflowLogger` does. ``options``: :class:`MlflowLogger`'s
    (``every_n_batches``, ``run_name``). The points go through the same writer, spill and
    replay as :class:`MlflowLogger`'s.
    """

    def __init__(  # noqa: PLR0913 - neptune_tensorflow_keras.NeptuneCallback's arguments
        self,
        run: Any = None,
        base_namespace: str = "training",
        log_model_diagram: bool = False,
        log_on_batch: bool = False,
        log_model_summary: bool = True,
        **options: Any,
    ) -> None:
        if not isinstance(base_namespace, str):
            raise TypeError(f"base_namespace={base_namespace!r}: a str")
        super().__init__(prefix=base_namespace, run=run, layout="neptune", **options)
        self.layout = layouts.neptune(base_namespace, on_batch=bool(log_on_batch))
        self.log_model_diagram, self.log_model_summary = log_model_diagram, log_model_summary

    def record_end(self) -> None:
        model_folder = f"{self.layout.namespace}/model"
        if self.log_model_summary:
            lines: list[str] = []
            self.model.summary(print_fn=lambda line, **_: lines.append(line))
            self.run.log_text("\n".join(lines) + "\n", f"{model_folder}/summary/summary.txt")
        if self.log_model_diagram:
            self._record_diagram(f"{model_folder}/visualization")

    def _record_diagram(self, folder: str) -> None:
        """Keras' plot of the model; a warning, as Neptune's callback gives, when pydot or
        graphviz is missing."""
        import keras

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.png"
            try:
                keras.utils.plot_model(self.model, to_file=str(path))
            except (ImportError, OSError, ValueError) as err:
                warnings.warn(f"Model visualization not logged. {err}", RuntimeWarning, 2)
                return
            if path.exists():
                self.run.log_artifact(path, folder)
