"""A user's labels read as the task they describe: two values a binary task (1 the minority),
k values a multi-class task, a 0/1 matrix a multi-label task. Labels that describe none of
them (NaN, fractions, one class) are refused with what is allowed, never coerced."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from losslab.data.dataset import DataError


@dataclass(frozen=True)
class LabelCoding:
    """The task and class names read from the training labels; :meth:`apply` codes any split."""

    task: str
    values: tuple  # the label values in class-id order; for binary [negative, positive]
    class_names: list[str]

    def apply(self, y: np.ndarray, where: str) -> np.ndarray:
        y = _one_column(np.asarray(y), where) if self.task != "multilabel" else np.asarray(y)
        _check_values(y, where)
        if self.task == "multilabel":
            return _check_matrix(y, where, len(self.class_names)).astype(np.float32)
        codes = pd.Index(self.values).get_indexer(y)
        unknown = pd.unique(y[codes < 0])
        if len(unknown):
            raise DataError(
                f"{where} holds labels {_listed(unknown)} that training does not; "
                f"allowed: {_listed(self.values)}"
            )
        return codes.astype(np.float32 if self.task == "binary" else np.int64)


def read_labels(y: np.ndarray, positive: str | None, where: str) -> LabelCoding:
    """The coding of training labels ``y``; ``positive`` names the minority of two values
    (default: 1 of 0/1 labels, else the rarer value, the later one on a tie)."""
    y = np.asarray(y)
    _check_values(y, where)
    if y.ndim == 2 and y.shape[1] > 1:
        if positive is not None:
            raise DataError(f"data.positive={positive}: {where} is a multi-label 0/1 matrix")
        k = _check_matrix(y, where, y.shape[1]).shape[1]
        return LabelCoding("multilabel", tuple(range(k)), [f"label_{i}" for i in range(k)])
    y = _one_column(y, where)
    values, counts = np.unique(y, return_counts=True)
    if len(values) < 2:
        raise DataError(
            f"{where} holds the one class {_listed(values)}; a classifier needs two classes"
        )
    if len(values) > 2:
        if positive is not None:
            raise DataError(
                f"data.positive={positive} names the minority of two classes; {where} holds "
                f"{len(values)}: {_listed(values)} (a multi-class task; drop data.positive)"
            )
        return LabelCoding("multiclass", tuple(values), [str(v) for v in values])
    pos = _positive(values, counts, positive, where)
    neg = values[1 - pos]
    return LabelCoding("binary", (neg, values[pos]), [str(neg), str(values[pos])])


def _positive(values: np.ndarray, counts: np.ndarray, positive: str | None, where: str) -> int:
    if positive is not None:
        named = [i for i, v in enumerate(values) if str(v) == str(positive)]
        if not named:
            raise DataError(
                f"data.positive={positive} is not a label of {where}; choose one of "
                f"{_listed(values)}"
            )
        return named[0]
    if set(values.tolist()) == {0, 1}:
        return int(np.flatnonzero(values == 1)[0])
    return 0 if counts[0] < counts[1] else 1


def _one_column(y: np.ndarray, where: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim != 1:
        raise DataError(
            f"{where} has shape {y.shape}; labels are (n,) classes or an (n, k) 0/1 matrix"
        )
    return y


def _check_values(y: np.ndarray, where: str) -> None:
    """No missing labels, and numbers that are whole: a fraction is a target, not a class."""
    missing = pd.isna(y)
    if missing.any():
        raise DataError(
            f"{where} holds {int(missing.sum())} missing (NaN) labels, the first at row "
            f"{int(np.argwhere(missing)[0][0])}; every sample needs its class"
        )
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise DataError(
            f"{where} holds fractions ({_listed(y[y != np.round(y)][:3])}); labels are "
            "classes: whole numbers, strings or booleans"
        )
    if y.dtype.kind not in "biufUSO":
        raise DataError(f"{where} has dtype {y.dtype}; labels are numbers, strings or booleans")


def _check_matrix(y: np.ndarray, where: str, k: int) -> np.ndarray:
    if y.ndim != 2 or y.shape[1] != k:
        raise DataError(f"{where} has shape {y.shape}; (n, {k}) 0/1 labels expected")
    outside = set(np.unique(y).tolist()) - {0, 1}
    if outside:
        raise DataError(
            f"{where} is a matrix holding {_listed(sorted(outside))}; a multi-label matrix "
            "holds 0 and 1 only"
        )
    return y


def _listed(values, limit: int = 5) -> str:
    shown = [v.item() if isinstance(v, np.generic) else v for v in list(values)[:limit]]
    return str(shown) + ("..." if len(values) > limit else "")
