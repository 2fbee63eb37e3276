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
    per_class = [keras.metrics.Recall(class_id=k, name=f"recall_{k}") for k in range(n_outputs)]
    threshold = None if task == "multiclass" else 0.5
    return [
        accuracy,
        *per_class,
        keras.metrics.F1Score(average="macro", threshold=threshold, name="macro_f1"),
        keras.metrics.AUC(name="pr_auc", curve="PR", multi_label=task == "multilabel"),
    ]


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
