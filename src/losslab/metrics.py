"""Keras metrics that judge the minority class, not accuracy alone."""

from __future__ import annotations

import keras


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
