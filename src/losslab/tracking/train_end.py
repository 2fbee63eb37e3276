"""What the Keras callback records once ``fit`` is over, when asked: the model, the learning
curves, the validation set judged at a threshold chosen on it, the model's config.

These are what a pipeline run records at its end (:mod:`losslab.train`), offered to a plain
Keras script with the same functions: the threshold rule is losslab's (the highest minority
recall at a false-positive rate of at most ``max_fpr``), the plots are losslab's.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class AtTrainEnd:
    """``model``: the model with signature and input example (from ``input_example``, else the
    first rows of ``validation_data``); ``plots``: learning curves, and with
    ``validation_data`` the confusion matrix, ROC and PR curves and the chosen threshold;
    ``model_config``: the model's Keras config and summary as artifacts."""

    model: bool = False
    plots: bool = False
    model_config: bool = False
    validation_data: tuple[Any, Any] | None = None
    input_example: Any = None
    max_fpr: float = 0.01

    def check(self) -> None:
        """Before training: what cannot be done at its end is refused now."""
        if self.model and self.input_example is None and self.validation_data is None:
            raise ValueError(
                "log_model=True needs an input_example or validation_data: the logged model's "
                "signature and example are taken from it"
            )
        if self.validation_data is not None and len(self.validation_data) != 2:
            raise ValueError("validation_data must be a pair (x_val, y_val)")
        if not 0 < self.max_fpr < 1:
            raise ValueError(f"max_fpr={self.max_fpr}: a false-positive rate in (0, 1)")

    def example(self) -> Any:
        if self.input_example is not None:
            return self.input_example
        return np.asarray(self.validation_data[0])[:EXAMPLE_ROWS]


def record(tracked, model, history: dict[str, list[float]], at_end: AtTrainEnd) -> None:
    """Everything ``at_end`` asks for, into ``tracked`` (stored, or spilled with the run)."""
    if at_end.model_config:
        _record_config(tracked, model)
    if at_end.plots:
        with tempfile.TemporaryDirectory(prefix="losslab-plots-") as folder:
            _record_plots(tracked, model, history, at_end, Path(folder))
    if at_end.model:
        tracked.log_model(model, at_end.example())


def _record_config(tracked, model) -> None:
    from losslab.models import summary_text

    tracked.log_text(json.dumps(model.get_config(), indent=2, default=str), "model/config.json")
    tracked.log_text(summary_text(model), "model/summary.txt")


def _record_plots(tracked, model, history, at_end: AtTrainEnd, folder: Path) -> None:
    from losslab import plots

    if history:
        plots.learning_curves(history, folder / "learning_curves.png")
    if at_end.validation_data is not None:
        evaluation = _judge_validation(tracked, model, at_end)
        if evaluation is not None:
            plots.confusion_matrix(evaluation, folder / "confusion_matrix.png")
            plots.roc_curve(evaluation, folder / "roc_curve.png")
            plots.pr_curve(evaluation, folder / "pr_curve.png")
    tracked.log_artifacts(folder, "plots")


def _judge_validation(tracked, model, at_end: AtTrainEnd):
    """Validation scores at the threshold chosen on it, as metrics; its confusion matrix as
    JSON. None (with a log line) where validation cannot be judged so."""
    from losslab.config import EvaluationConfig
    from losslab.evaluate import EvaluationError, evaluate_validation

    x, y = at_end.validation_data
    y = np.asarray(y)
    p = np.asarray(model.predict(x, verbose=0, batch_size=4096))
    try:
        evaluation = evaluate_validation(y, p, ["0", "1"], EvaluationConfig(max_fpr=at_end.max_fpr))
    except (EvaluationError, ValueError) as err:
        log.warning("validation not judged: %s", err)
        return None
    tracked.log_metrics(evaluation.metrics)
    confusion = {"labels": evaluation.class_names, "at_threshold": evaluation.confusion.tolist()}
    confusion["threshold"] = evaluation.threshold
    tracked.log_text(json.dumps(confusion, indent=2), "evaluation/confusion_matrix.json")
    return evaluation
