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
            keras.metrics.TruePositives(name="tp"),
            keras.metrics.FalsePositives(name="fp"),
            keras.metrics.TrueNegatives(name="tn"),
            keras.metrics.FalseNegatives(name="fn"),
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
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
    per_class = class_recalls(n_outputs)
    threshold = None if task == "multiclass" else 0.5
    return [
        accuracy,
        *per_class,
        keras.metrics.F1Score(average="macro", threshold=threshold, name="macro_f1"),
        keras.metrics.AUC(name="pr_auc", curve="PR", multi_label=task == "multilabel"),
    ]


@keras.saving.register_keras_serializable(package="losslab")
class ClassRecall(keras.metrics.Metric):
    """``recall_<k>``: class ``k``'s recall at a score above 0.5, as
    ``keras.metrics.Recall(class_id=k)`` gives it (with sample weights, 0 with no positives).

    Why not ``Recall(class_id=k)`` per class: a fit traces every compiled metric's update into
    its train and test steps, and ten classes' ten confusion updates were most of a small
    multiclass job's tracing. Here the metric of class 0 keeps the counts of every class in
    two vectors, updated at once; the others only read their class from it (a Keras metric
    has one value, and compiled metrics cannot return a dict of them).
    """

    def __init__(  # noqa: PLR0913 - Keras passes name and dtype back from get_config
        self,
        class_id: int,
        counts: ClassRecall | None = None,
        n_classes: int = 1,
        name: str | None = None,
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name or f"recall_{class_id}", dtype=dtype)
        self.class_id, self.n_classes = class_id, n_classes
        # not tracked as a sub-metric (whose variables Keras would list twice)
        object.__setattr__(self, "_counts", counts)
        if counts is None:  # the first of its fit's, or of a reloaded model's: each alone
            self.true_positives = self.add_variable((n_classes,), "zeros", name="tp")
            self.positives = self.add_variable((n_classes,), "zeros", name="positives")

    def get_config(self) -> dict:
        return {**super().get_config(), "class_id": self.class_id, "n_classes": self.n_classes}

    @property
    def counts(self) -> ClassRecall:
        """The metric whose variables count every class."""
        return self._counts or self

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if self._counts is not None:
            return
        ops = keras.ops
        y_true = ops.cast(ops.cast(y_true, "bool"), self.dtype)
        hits = ops.cast(ops.greater(y_pred, 0.5), self.dtype) * y_true
        if sample_weight is not None:
            weight = ops.reshape(ops.cast(sample_weight, self.dtype), (-1, 1))
            y_true, hits = y_true * weight, hits * weight
        self.true_positives.assign_add(ops.sum(hits, axis=0))
        self.positives.assign_add(ops.sum(y_true, axis=0))

    def result(self):
        counts, k = self.counts, self.class_id
        return keras.ops.divide_no_nan(counts.true_positives[k], counts.positives[k])


def class_recalls(n_classes: int) -> list[ClassRecall]:
    """``recall_0`` ... ``recall_<n-1>``, counted by one update (see :class:`ClassRecall`)."""
    first = ClassRecall(0, n_classes=n_classes)
    return [first, *(ClassRecall(k, first) for k in range(1, n_classes))]


class ValidationRecallAtFpr(keras.callbacks.Callback):
    """Adds ``val_recall_at_fpr`` to each epoch's logs: minority recall on validation at a
    false-positive rate on the majority of at most ``max_fpr``.

    Keras' ``SensitivityAtSpecificity`` bins scores into a fixed grid of thresholds, too
    coarse where an imbalanced model's majority scores crowd near 0; this one is exact, from
    one prediction of the validation set per epoch. Put it first in the callback list, so
    early stopping, pruning and the MLflow logger see the value.
    """

    def __init__(self, x_val, y_val, max_fpr: float, name: str = "val_recall_at_fpr") -> None:
        super().__init__()
        self.x_val = x_val
        self.y_val = y_val.ravel()
        self.max_fpr = max_fpr
        self.name = name

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        from losslab.evaluate import recall_at_fpr

        if logs is None or len(np.unique(self.y_val)) < 2:
            return  # one class: no rate to judge (refused before training where it matters)
        p = self.model.predict(self.x_val, verbose=0, batch_size=4096).ravel()
        if np.all(np.isfinite(p)):  # a NaN model is stopped and reported by the training loop
            logs[self.name] = recall_at_fpr(self.y_val, p, self.max_fpr)[0]
