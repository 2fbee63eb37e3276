"""The decision rule a job with validation folds delivers, and its out-of-fold scores.

With ``data.folds=k`` one model is trained per fold, and fold models trained on different
data score on different scales: one of them may call 0.3 what another calls 0.9. A raw
threshold chosen on their pooled out-of-fold scores then means a different false-positive
rate for each model, and nothing for their average. So each fold model's score is mapped to a
common scale before anything is pooled or averaged: the share of its own validation fold's
majority samples that score strictly below it (one minus its validation false-positive rate
at that score). One threshold is chosen on the pooled out-of-fold mapped scores (every
minority sample judges it), and the delivered model is the mean of the mapped fold models:
one Keras model (Discretization and Rescaling layers after each fold model, so serving it
gives the same scores and decisions), read at that one threshold.

Why this rather than per-fold thresholds with a vote, or a refit on all data: the delivered
object stays one model with one threshold, as on a single split; its threshold is chosen on
every minority sample the folds hold; a refit would have no validation data of its own to
choose its epoch or threshold on. What it gives up: the out-of-fold figure judges each
validation sample by the one fold model that did not train on it, while a test sample is
judged by the mean of the k mapped scores, so the estimate is exact for the rule on
out-of-fold data, not for the average (measured against test in RESULTS.md); the scale's
resolution is one validation majority sample of the fold; scores above every validation
majority sample of a fold tie at 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def boundaries(majority_scores: np.ndarray) -> np.ndarray:
    """Bin boundaries for Keras' ``Discretization``, which counts boundaries ``<= s``: each
    majority score moved up by one float32 step, so it counts majority scores ``< s``. A step
    that lands among the subnormal numbers (a score of exactly 0, from a saturated sigmoid)
    goes to the smallest normal one: TensorFlow flushes subnormals to 0."""
    ref = np.sort(np.asarray(majority_scores, dtype=np.float32).ravel())
    up = np.nextafter(ref, np.float32(np.inf)).astype(np.float32)
    tiny = np.finfo(np.float32).tiny
    return np.where(np.abs(up) < tiny, tiny, up).astype(np.float32)


def to_majority_scale(scores: np.ndarray, majority_scores: np.ndarray) -> np.ndarray:
    """The common scale in NumPy, with the float32 operations the Keras layers perform:
    the share of ``majority_scores`` strictly below each score."""
    below = np.searchsorted(boundaries(majority_scores), np.asarray(scores, np.float32), "right")
    scale = np.float32(1.0 / np.asarray(majority_scores).size)
    return below.astype(np.float32) * scale + np.float32(0.0)


def mapped(model: Any, majority_scores: np.ndarray, name: str) -> Any:
    """``model`` followed by the map to its validation majority's scale, as one Keras model."""
    import keras

    inputs = keras.Input(shape=model.input_shape[1:], name="features")
    counted = keras.layers.Discretization(
        bin_boundaries=boundaries(majority_scores).tolist(), name=f"{name}_below"
    )(model(inputs))
    share = keras.layers.Rescaling(1.0 / np.asarray(majority_scores).size, name=f"{name}_scale")
    return keras.Model(inputs, share(counted), name=name)


def delivered(models: Sequence[Any], y_val: Sequence[np.ndarray], p_val: Sequence[np.ndarray]):
    """The delivered model and the pooled out-of-fold scores on its scale.

    ``p_val[k]``: fold model ``k``'s raw scores on its validation fold, labels ``y_val[k]``.
    One fold: the model and its raw scores (the map is monotone, the threshold the same).
    """
    if len(models) == 1:
        return models[0], np.asarray(p_val[0])
    import keras

    branches, oof = [], []
    for k, (model, y, p) in enumerate(zip(models, y_val, p_val, strict=True)):
        majority = np.asarray(p).ravel()[np.asarray(y).ravel() == 0]
        branches.append(mapped(model, majority, f"fold_{k}_on_majority_scale"))
        oof.append(to_majority_scale(np.asarray(p).ravel(), majority).reshape(-1, 1))
    inputs = keras.Input(shape=models[0].input_shape[1:], name="features")
    mean = keras.layers.Average(name="fold_mean")([branch(inputs) for branch in branches])
    return keras.Model(inputs, mean, name="fold_ensemble"), np.concatenate(oof)
