"""An operating point with a guarantee: the lowest threshold whose validation false-positive
rate has an exact upper confidence bound at or below ``max_fpr``.

A threshold set at exactly ``max_fpr`` on validation lands above it on new data about half
the time. The bound here is Clopper-Pearson's one-sided upper limit for a binomial rate
(SciPy's beta quantile: the bound of ``fp`` false positives among ``n`` majority samples is
``beta.ppf(confidence, fp + 1, n - fp)``), so the chosen threshold's true false-positive rate
is at most ``max_fpr`` with probability at least ``confidence`` over validation draws.

Why one bound per threshold needs no correction for choosing among many thresholds: the
false-positive rate can only fall as the threshold rises. If the chosen threshold's true rate
exceeded ``max_fpr``, so would the rate of the highest threshold whose true rate does, and that
threshold calls no more validation samples positive than the chosen one: its bound passed too,
which happens with probability at most ``1 - confidence`` (one test, at one fixed threshold).
The bound depends on the false-positive count only, so the rule is: allow the most false
positives whose bound passes, and take the lowest threshold that stays within them.

What it assumes: the validation majority is a fresh draw for the model judged. An epoch
restored by early stopping on the same validation data, or a sweep's choice among trials on
it, makes the count a little optimistic; with folds, the bound is the out-of-fold rule's
(:mod:`losslab.ensemble`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def fpr_upper_bound(fp, n: int, confidence: float):
    """Clopper-Pearson's one-sided upper confidence bound of a rate seen as ``fp`` of ``n``
    (an array of counts gives an array of bounds); 1 where every sample is a false positive."""
    fp = np.asarray(fp)
    bound = stats.beta.ppf(confidence, fp + 1, np.maximum(n - fp, 1))
    return np.where(fp >= n, 1.0, bound)


def allowed_false_positives(n: int, max_fpr: float, confidence: float) -> int:
    """The most false positives among ``n`` majority samples whose bound is at most
    ``max_fpr``; -1 when even none is too many (``n`` too small to certify the rate)."""
    counts = np.arange(math.floor(max_fpr * n) + 1)  # the bound exceeds fp / n: no more pass
    return int(np.count_nonzero(fpr_upper_bound(counts, n, confidence) <= max_fpr)) - 1


def majority_needed(max_fpr: float, confidence: float) -> int:
    """The fewest majority samples that can certify ``max_fpr``: with none of them a false
    positive the bound is 1 - (1 - confidence) ** (1 / n)."""
    n = max(1, math.ceil(math.log1p(-confidence) / math.log1p(-max_fpr)))
    while fpr_upper_bound(0, n, confidence) > max_fpr:  # floating point at the boundary
        n += 1
    while n > 1 and fpr_upper_bound(0, n - 1, confidence) <= max_fpr:
        n -= 1
    return n


def bounded_threshold(
    y: np.ndarray, p: np.ndarray, max_fpr: float, confidence: float
) -> float | None:
    """The lowest score ``t`` whose false positives (majority scores ``>= t``) have a bound at
    most ``max_fpr``; None when no score qualifies (nothing may be called positive, or
    validation is too small to certify the rate: :func:`majority_needed`)."""
    majority = np.sort(p[y == 0])
    allowed = allowed_false_positives(len(majority), max_fpr, confidence)
    candidates = np.unique(p)
    fp = len(majority) - np.searchsorted(majority, candidates, side="left")
    ok = fp <= allowed  # False then True as the threshold rises
    return float(candidates[np.argmax(ok)]) if ok.any() else None
