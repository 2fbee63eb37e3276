"""The one shape every data source returns, and the checks it must pass before training."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TASKS = ("binary", "multiclass", "multilabel")


class DataError(ValueError):
    """Data that cannot be trained on; the message names the value and what is allowed."""


@dataclass(frozen=True)
class ModelShape:
    """What a model must fit to take this data: its input and outputs."""

    input_shape: tuple[int, ...]
    n_outputs: int
    task: str
    # (height, width, channels) of flattened images, for convolutions
    image_shape: tuple[int, ...] | None = None


@dataclass
class RawInputs:
    """How the source's raw rows become the model's inputs, so the logged model can take raw
    rows: the encoding fitted on the training split as plain parameters (the format
    :mod:`losslab.tracking.raw_rows_model` reads), a few raw training rows as the input
    example, and the raw test rows."""

    encoding: dict[str, Any]
    example: Any  # a pandas DataFrame with the original column names and types
    test: Any


@dataclass
class Dataset:
    """Train, validation and test arrays with their class names.

    Labels: ``binary`` holds 0/1 with 1 the minority (positive) class; ``multiclass`` holds
    integer class ids; ``multilabel`` holds a 0/1 matrix, one column per output.
    """

    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str] = field(default_factory=list)
    # (height, width, channels) of flattened images, for convolutions and augmentation
    image_shape: tuple[int, ...] | None = None
    # raw rows in, model inputs out: sources that encode their rows (tables) set it
    raw: RawInputs | None = None

    def __post_init__(self) -> None:
        check(self)

    @property
    def n_outputs(self) -> int:
        return 1 if self.task == "binary" else len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def model_shape(self) -> ModelShape:
        return ModelShape(self.input_shape, self.n_outputs, self.task, self.image_shape)

    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {
            "train": (self.x_train, self.y_train),
            "val": (self.x_val, self.y_val),
            "test": (self.x_test, self.y_test),
        }

    def class_counts(self) -> dict[str, list[int]]:
        """Samples per class (per output for multi-label) in each split."""
        counts = {}
        for split, (_, y) in self.splits().items():
            if self.task == "multilabel":
                counts[split] = [int(c) for c in y.sum(axis=0)]
            else:
                counts[split] = [int((y == k).sum()) for k in range(len(self.class_names))]
        return counts

    def fingerprint(self) -> str:
        """A short hash of every array, to tell runs on different data apart."""
        digest = hashlib.sha256()
        for x, y in self.splits().values():
            digest.update(np.ascontiguousarray(x).tobytes())
            digest.update(np.ascontiguousarray(y).tobytes())
        return digest.hexdigest()[:16]


def check(ds: Dataset) -> None:
    """Reject data that would train silently wrong: raise :class:`DataError` naming the fault."""
    if ds.task not in TASKS:
        raise DataError(f"task={ds.task!r} is not allowed; choose one of {list(TASKS)}")
    for split, (x, y) in ds.splits().items():
        if len(x) != len(y):
            raise DataError(f"{ds.name}: {split} has {len(x)} inputs but {len(y)} labels")
        if len(x) == 0:
            raise DataError(f"{ds.name}: the {split} split is empty")
        if not np.issubdtype(x.dtype, np.number):
            raise DataError(f"{ds.name}: {split} inputs have dtype {x.dtype}; numbers expected")
        if not np.all(np.isfinite(x)):
            bad = int((~np.isfinite(x)).sum())
            raise DataError(f"{ds.name}: {split} inputs hold {bad} NaN or inf values")
        if x.shape[1:] != ds.x_train.shape[1:]:
            raise DataError(
                f"{ds.name}: {split} inputs have shape {x.shape[1:]}, "
                f"train inputs {ds.x_train.shape[1:]}"
            )
        _check_labels(ds, split, y)
    if ds.task == "binary" and len(np.unique(ds.y_train)) < 2:
        only = int(np.unique(ds.y_train)[0])
        raise DataError(
            f"{ds.name}: the training split holds class {only} only; both 0 and 1 are needed"
        )


def _check_labels(ds: Dataset, split: str, y: np.ndarray) -> None:
    if ds.task in ("binary", "multilabel"):
        values = set(np.unique(y).tolist())
        if not values <= {0, 1}:
            raise DataError(
                f"{ds.name}: {split} labels hold {sorted(values - {0, 1})[:5]}; "
                "binary labels must be 0 or 1"
            )
    if ds.task == "multilabel" and (y.ndim != 2 or y.shape[1] != len(ds.class_names)):
        raise DataError(
            f"{ds.name}: {split} labels have shape {y.shape}; "
            f"(n, {len(ds.class_names)}) expected for multi-label data"
        )
    if ds.task == "multiclass":
        n = len(ds.class_names)
        if y.ndim != 1 or y.min() < 0 or y.max() >= n:
            raise DataError(f"{ds.name}: {split} labels must be class ids in [0, {n})")
