"""A feature that alone separates the training classes: a label in disguise (an extra copy of
the label, a column filled in after the outcome), reported by name before any training."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from losslab.data.dataset import DataError

log = logging.getLogger(__name__)


def _separates_numbers(values: np.ndarray, y: np.ndarray) -> bool:
    """Some threshold puts every row of one class on one side; a missing value counts as
    above every number, then as below every number."""
    a, b = values[y == 1], values[y == 0]
    for fill in (np.inf, -np.inf):
        a_, b_ = np.where(np.isnan(a), fill, a), np.where(np.isnan(b), fill, b)
        if a_.max() < b_.min() or b_.max() < a_.min():
            return True
    return False


def _separates_categories(values: pd.Series, y: np.ndarray) -> bool:
    """Every category (missing included) holds one class only."""
    classes = pd.Series(y, index=values.index).groupby(values, dropna=False).nunique()
    return len(classes) > 1 and int(classes.max()) == 1


def perfect_features(
    frame: pd.DataFrame, y: np.ndarray, numbers: list[str], categories: list[str]
) -> list[str]:
    """The features that separate the training classes by themselves (one-column labels)."""
    if y.ndim != 1:
        return []
    found = [c for c in categories if _separates_categories(frame[c], y)]
    if len(np.unique(y)) == 2:
        found += [c for c in numbers if _separates_numbers(frame[c].to_numpy(np.float64), y)]
    return found


def check_leaks(
    frame: pd.DataFrame, y: np.ndarray, numbers: list[str], categories: list[str], allow: bool
) -> None:
    found = perfect_features(frame, y, numbers, categories)
    if not found:
        return
    verb = "separate" if len(found) > 1 else "separates"
    what = (
        f"column {found} alone {verb} the training classes perfectly (a copy of the label, or "
        "known only after it?)"
    )
    if not allow:
        raise DataError(
            f"data.allow_perfect_feature=false: {what}; drop it (data.drop=[{found[0]}]) or "
            "keep it with data.allow_perfect_feature=true"
        )
    log.warning("%s; kept because data.allow_perfect_feature=true", what)
