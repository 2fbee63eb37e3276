"""Seeded, stratified splits and train-only standardisation, shared by every source."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from losslab.data.dataset import DataError


def stratify_key(y: np.ndarray) -> np.ndarray | None:
    """Labels to stratify on: the class for 1-D labels, None for multi-label matrices."""
    return y if y.ndim == 1 else None


def check_stratifiable(y: np.ndarray, parts: str = "a stratified split") -> None:
    """Two classes or more, each with at least two samples, or a clear :class:`DataError`."""
    key = stratify_key(y)
    if key is None:
        return
    classes, counts = np.unique(key, return_counts=True)
    if len(classes) < 2:
        raise DataError(
            f"the labels hold class {[int(c) for c in classes]} only; "
            "a classifier needs two classes"
        )
    few = {int(c): int(n) for c, n in zip(classes, counts, strict=True) if n < 2}
    if few:
        raise DataError(f"classes {few} have fewer than 2 samples; {parts} needs 2 per class")


def split(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int, how: str = "stratified"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split off ``fraction`` of the samples: ``(x_keep, y_keep, x_out, y_out)``.

    ``stratified`` keeps each class's share in both parts. ``tail`` takes the last
    ``fraction`` of the arrays unshuffled, as Keras' ``validation_split`` does.
    """
    if how == "tail":
        cut = len(x) - max(1, int(round(len(x) * fraction)))
        return x[:cut], y[:cut], x[cut:], y[cut:]
    check_stratifiable(y)
    x_keep, x_out, y_keep, y_out = train_test_split(
        x, y, test_size=fraction, random_state=seed, stratify=stratify_key(y)
    )
    return x_keep, y_keep, x_out, y_out


def subsample(x: np.ndarray, y: np.ndarray, n: int | None, seed: int):
    """At most ``n`` samples, stratified; all of them when ``n`` is None or large enough."""
    if n is None or n >= len(x):
        return x, y
    x_keep, _, y_keep, _ = train_test_split(
        x, y, train_size=n, random_state=seed, stratify=stratify_key(y)
    )
    return x_keep, y_keep


def standardize(
    x_train: np.ndarray, *others: np.ndarray, clip: float | None = None
) -> list[np.ndarray]:
    """Scale every array with the mean and deviation of the training array only."""
    scaler = StandardScaler().fit(x_train)
    out = [scaler.transform(a) for a in (x_train, *others)]
    if clip is not None:
        out = [np.clip(a, -clip, clip) for a in out]
    return [a.astype(np.float32) for a in out]
