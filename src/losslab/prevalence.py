"""Test scores at the prevalence users will meet.

A test split built balanced (60 of each digit, MNIST's 1009 and 982) while training is 9:1 or
60:1 flatters precision, F1, accuracy and PR-AUC: in use, the same model meets many more of
the majority per minority sample, and raises many more false alarms per hit. Weighting each
test class so the weighted minority share equals the training split's reads the same
predictions as if drawn at that share (scikit-learn's metrics take the weights as
``sample_weight``). Recall on either class does not depend on the prevalence, nor does
recall at a fixed false-positive rate, which stays the headline.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

SUFFIX = "_at_train_prevalence"


def class_weights(y: np.ndarray, minority_share: float) -> np.ndarray:
    """Per-sample weights (1 on average) under which the minority (label 1) makes up
    ``minority_share`` of the weight."""
    y = np.asarray(y).ravel()
    n, positives = len(y), int(np.sum(y == 1))
    return np.where(
        y == 1, minority_share * n / positives, (1 - minority_share) * n / (n - positives)
    )


def scores_at(
    y: np.ndarray, p: np.ndarray, threshold: float, minority_share: float, prefix: str
) -> dict[str, float]:
    """Precision, F1, accuracy at ``threshold`` and PR-AUC, with the classes of ``y``
    weighted to ``minority_share``; none when ``y`` lacks a class."""
    y, p = np.asarray(y).ravel(), np.asarray(p).ravel()
    if len(np.unique(y)) < 2:
        return {}
    w = class_weights(y, minority_share)
    pred = (p >= threshold).astype(int)
    scores = {
        "precision": skm.precision_score(y, pred, sample_weight=w, zero_division=0),
        "f1": skm.f1_score(y, pred, sample_weight=w, zero_division=0),
        "accuracy": skm.accuracy_score(y, pred, sample_weight=w),
        "pr_auc": skm.average_precision_score(y, p, sample_weight=w),
    }
    return {f"{prefix}{name}{SUFFIX}": float(value) for name, value in scores.items()}
