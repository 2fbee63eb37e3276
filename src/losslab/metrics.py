"""Keras metrics that judge the minority class, not accuracy alone."""

from __future__ import annotations

import keras
import numpy as np


def for_task(task: str, n_outputs: int, one_hot: bool = True) -> list[keras.metrics.Metric]:
    """Training metrics, named so their MLflow keys are short and stable.

    binary: accuracy, tp/fp/tn/fn, precision, recall, ROC-AUC, PR-AUC.
    multiclass / multilabel: accuracy, recall per class and macro-F1 (with one-hot labels;
    sparse labels get accuracy only, evaluation reports the rest).
    """
    if task == "binary":
        return [
            keras.metrics.BinaryAccuracy(name="accuracy"),
            *counted([(figure, None) for figure in Counted.FIGURES], n_outputs),
            keras.metrics.AUC(name="roc_auc", curve="ROC"),
            keras.metrics.AUC(name="pr_auc", curve="PR"),
        ]
    if task == "multiclass" and not one_hot:
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    accuracy = (
        keras.metrics.CategoricalAccuracy(name="accuracy")
        if task == "multiclass"
        else keras.metrics.BinaryAccuracy(name="accuracy")
    )
    per_class = counted([("recall", k) for k in range(n_outputs)], n_outputs)
    threshold = None if task == "multiclass" else 0.5
    return [
        accuracy,
        *per_class,
        keras.metrics.F1Score(average="macro", threshold=threshold, name="macro_f1"),
        keras.metrics.AUC(name="pr_auc", curve="PR", multi_label=task == "multilabel"),
    ]


@keras.saving.register_keras_serializable(package="losslab")
class Counted(keras.metrics.Metric):
    """One figure of the confusion counts at a score above 0.5: ``tp``, ``fp``, ``tn``,
    ``fn``, ``precision`` or ``recall``, of every output together or of class ``class_id``,
    as Keras' ``TruePositives`` ... ``Recall(class_id=k)`` give it (with sample weights; a
    ratio with nothing to divide by is 0).

    Why not Keras' own: a fit traces every compiled metric's update into its train and test
    steps, and each of those metrics makes its own confusion update: six for a binary job,
    one per class for a multiclass one, most of a small job's tracing. Here the first
    metric of a family (:func:`counted`) keeps the counts of every output in four vectors,
    updated at once; the others only read their figure from it (a Keras metric has one
    value, and compiled metrics cannot return a dict of them).
    """

    FIGURES = ("tp", "fp", "tn", "fn", "precision", "recall")

    def __init__(  # noqa: PLR0913 - Keras passes name and dtype back from get_config
        self,
        figure: str,
        class_id: int | None = None,
        counts: Counted | None = None,
        n_outputs: int = 1,
        name: str | None = None,
        dtype: str | None = None,
    ) -> None:
        if figure not in self.FIGURES:
            raise ValueError(f"figure={figure!r}: one of {', '.join(self.FIGURES)}")
        default = figure if class_id is None else f"{figure}_{class_id}"
        super().__init__(name=name or default, dtype=dtype)
        self.figure, self.class_id, self.n_outputs = figure, class_id, n_outputs
        # not tracked as a sub-metric (whose variables Keras would list twice)
        object.__setattr__(self, "_counts", counts)
        if counts is None:  # the first of its family, or of a reloaded model's: each alone
            self.cells = {
                cell: self.add_variable((n_outputs,), "zeros", name=cell)
                for cell in ("tp", "fp", "tn", "fn")
            }

    def get_config(self) -> dict:
        own = {"figure": self.figure, "class_id": self.class_id, "n_outputs": self.n_outputs}
        return {**super().get_config(), **own}

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if self._counts is not None:
            return
        ops = keras.ops
        y_pred = ops.convert_to_tensor(y_pred)
        truth = ops.reshape(ops.cast(ops.cast(y_true, "bool"), self.dtype), ops.shape(y_pred))
        called = ops.cast(ops.greater(y_pred, 0.5), self.dtype)
        weight = 1.0
        if sample_weight is not None:
            weight = ops.reshape(ops.cast(sample_weight, self.dtype), (-1, 1))
        for cell, count in (
            ("tp", truth * called),
            ("fp", (1 - truth) * called),
            ("tn", (1 - truth) * (1 - called)),
            ("fn", truth * (1 - called)),
        ):
            counts = ops.reshape(count * weight, (-1, self.n_outputs))
            self.cells[cell].assign_add(ops.sum(counts, axis=0))

    def result(self):
        ops = keras.ops
        cells = (self._counts or self).cells
        if self.class_id is None:
            tp, fp, tn, fn = (ops.sum(cells[c]) for c in ("tp", "fp", "tn", "fn"))
        else:
            tp, fp, tn, fn = (cells[c][self.class_id] for c in ("tp", "fp", "tn", "fn"))
        if self.figure == "precision":
            return ops.divide_no_nan(tp, tp + fp)
        if self.figure == "recall":
            return ops.divide_no_nan(tp, tp + fn)
        return {"tp": tp, "fp": fp, "tn": tn, "fn": fn}[self.figure]


def counted(figures: list[tuple[str, int | None]], n_outputs: int) -> list[Counted]:
    """Metrics for ``(figure, class_id)`` pairs, counted by one update (see :class:`Counted`)."""
    (figure, class_id), *rest = figures
    first = Counted(figure, class_id, n_outputs=n_outputs)
    return [first, *(Counted(f, k, first, n_outputs) for f, k in rest)]


class Validation(keras.callbacks.Callback):
    """Each epoch's validation figures from one prediction of the validation split: the
    compiled loss and metrics as ``fit(validation_data=...)`` logs them (``val_loss``,
    ``val_pr_auc``, ...), and with ``max_fpr`` ``val_recall_at_fpr``: minority recall at a
    false-positive rate on the majority of at most ``max_fpr``.

    Why not Keras' own validation: it builds an input pipeline for the validation arrays and
    traces a test step with every compiled metric in each fit, a third of a small job's fit,
    and the recall needs a prediction of its own besides. Here both come from the same
    scores, the loss and metrics computed by the model's own ``compute_loss`` and
    ``compute_metrics``. Why not Keras' ``SensitivityAtSpecificity`` for the recall: it bins
    scores into a fixed grid of thresholds, too coarse where an imbalanced model's majority
    scores crowd near 0; this one is exact. Put it first in the callback list, so early
    stopping, pruning and the MLflow logger see the figures.

    ``y_val``: the labels as ``fit`` takes them (one-hot where the loss wants it); ``y_flat``:
    the class of each sample, for the recall (binary tasks).
    """

    def __init__(
        self, x_val, y_val, y_flat=None, max_fpr: float | None = None, batch_size: int = 4096
    ) -> None:
        super().__init__()
        self.x_val, self.y_val = x_val, y_val
        self.y_flat = None if y_flat is None else np.asarray(y_flat).ravel()
        self.max_fpr = max_fpr
        self.batch_size = batch_size

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        from losslab.predict import scores

        if logs is None:
            return
        p = scores(self.model, self.x_val, self.batch_size)
        logs.update({f"val_{key}": value for key, value in self.compiled(p).items()})
        if self.max_fpr is not None and self.y_flat is not None:
            recall = self.recall_at_fpr(p.ravel())
            if recall is not None:
                logs["val_recall_at_fpr"] = recall

    def compiled(self, p: np.ndarray) -> dict[str, float]:
        """The compiled loss (the mean over samples, with the weights' regularization) and
        metrics on scores ``p``, in batches of ``batch_size`` rows: sums and means over
        samples, so the figures do not depend on it beyond rounding."""
        model, y, rows = self.model, self.y_val, len(p)
        model.reset_metrics()  # the epoch's training figures are in the logs already
        loss = 0.0
        for start in range(0, rows, self.batch_size):
            part = slice(start, start + self.batch_size)
            y_part, p_part = y[part], keras.ops.convert_to_tensor(p[part])
            batch_loss = model.compute_loss(y=y_part, y_pred=p_part, training=False)
            loss += float(batch_loss) * len(p_part) / rows
            model.compute_metrics(None, y_part, p_part)
        figures = {k: float(v) for k, v in model.get_metrics_result().items()}
        model.reset_metrics()
        return {**figures, "loss": loss}

    def recall_at_fpr(self, p: np.ndarray) -> float | None:
        """None with one class in validation (refused before training where it matters), or
        for a model whose scores are not finite (stopped and reported by the training loop)."""
        from losslab.evaluate import recall_at_fpr

        if len(np.unique(self.y_flat)) < 2 or not np.all(np.isfinite(p)):
            return None
        return recall_at_fpr(self.y_flat, p, self.max_fpr)[0]
