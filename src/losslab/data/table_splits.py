"""Row splits for real tables: stratified, by time, or keeping each group on one side.

Each returns row indices. A random split reuses :func:`losslab.data.splits.split` on the row
numbers; a group split is scikit-learn's ``StratifiedGroupKFold`` (its first fold split off),
``GroupShuffleSplit`` for multi-label rows, which it cannot stratify; a time split sorts the
rows and cuts, so no validation or test row is older than a training row. Random and time
splits keep ``min_val_minority`` of every class in training and validation, and one in test,
or refuse with the counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from losslab.data.dataset import DataError
from losslab.data.splits import split

Rows = tuple[np.ndarray, np.ndarray]  # (kept, split off)


def random_rows(y: np.ndarray, fraction: float, seed: int, need: int, part: str) -> Rows:
    """Stratified: ``fraction`` of each class split off, and ``need`` of each where it can."""
    rows = np.arange(len(y))
    try:
        keep, _, out, _ = split(rows, y, fraction, seed, "stratified", need)
    except DataError:  # cannot: the plain split's counts, in this source's own words below
        keep, _, out, _ = split(rows, y, fraction, seed, "stratified")
    check_counts(y, keep, out, need, part)
    return keep, out


def group_rows(
    y: np.ndarray, groups: np.ndarray, fraction: float, seed: int, need: int, part: str
) -> Rows:
    """About ``fraction`` of the groups split off, every group's rows on one side."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    if len(np.unique(groups)) < 2:
        raise DataError("data.group_column holds one group only; a split needs two groups")
    if y.ndim == 1:
        k = max(2, int(round(1 / fraction)))
        folds = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
        keep, out = next(folds.split(np.zeros(len(y)), y, groups))
    else:
        shuffle = GroupShuffleSplit(1, test_size=fraction, random_state=seed)
        keep, out = next(shuffle.split(np.zeros(len(y)), y, groups))
    check_counts(y, keep, out, need, part)
    return keep, out


def time_rows(y: np.ndarray, times: np.ndarray, fraction: float, need: int, part: str) -> Rows:
    """The latest ``fraction`` of the rows split off (a stable sort: ties keep file order)."""
    order = np.argsort(times, kind="stable")
    n_out = max(1, int(round(fraction * len(order))))
    keep, out = order[:-n_out], order[-n_out:]
    check_counts(y, keep, out, need, part)
    return keep, out


def check_counts(y: np.ndarray, keep: np.ndarray, out: np.ndarray, need: int, part: str) -> None:
    """Training and ``part`` (validation, test) hold ``need`` rows of every class (positive
    labels of all outputs for multi-label rows), or a :class:`DataError` with the counts."""
    if y.ndim == 2:
        names, out_n, keep_n = ["label"], [y[out].sum()], [y[keep].sum()]
    else:
        names = [int(c) for c in np.unique(y)]
        out_n = [int((y[out] == c).sum()) for c in names]
        keep_n = [int((y[keep] == c).sum()) for c in names]
    short = [
        f"class {n}: {int(o)} in {part}, {int(k)} in training"
        for n, o, k in zip(names, out_n, keep_n, strict=True)
        if o < need or k < need
    ]
    if short:
        key = "data.min_val_minority" if part == "validation" else "data.test_fraction"
        raise DataError(
            f"{key}: {part} and training each need at least {need} rows of every class, but "
            f"{'; '.join(short)}; lower data.min_val_minority, change "
            f"data.{'val' if part == 'validation' else 'test'}_fraction or the split, or add rows"
        )


def time_values(column: pd.Series, name: str) -> np.ndarray:
    """Numbers as they are, anything else parsed as dates; missing or unparsable refused."""
    if column.isna().any():
        raise DataError(
            f"data.time_column={name}: {int(column.isna().sum())} rows have no time; "
            "every row needs one to be placed before or after the others"
        )
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        return column.to_numpy()
    try:
        return pd.to_datetime(column, format="mixed").to_numpy()
    except (ValueError, TypeError) as err:
        raise DataError(
            f"data.time_column={name}: {str(err)[:120]}; give numbers or dates"
        ) from None
