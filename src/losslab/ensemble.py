"""The decision rule a job with validation folds delivers, and its out-of-fold scores.

With ``data.folds=k`` one model is trained per fold, and fold models trained on different
data score on different scales: one of them may call 0.3 what another calls 0.9. A raw
threshold chosen on their pooled out-of-fold scores then means a different false-positive
rate for each model, and nothing for their average. So each fold model's score is mapped to a
common scale before anything is pooled or averaged: at each of its validation fold's
majority scores, the share of that majority scoring strictly below (one minus its validation
false-positive rate there), linear in between and beyond (:func:`knots`). One threshold is
chosen on the pooled out-of-fold mapped scores (every minority sample judges it), and the
delivered model is the mean of the mapped fold models: one Keras model (Discretization,
Embedding lookups and arithmetic layers after each fold model, so serving it gives the same
scores and decisions), read at that one threshold. A step map (the share alone) would tie
every score above a fold's top majority score at 1, so on separable validation the threshold
would sit on that top score, with no margin; the linear pieces keep the margin.

Why this rather than per-fold thresholds with a vote, or a refit on all data: the delivered
object stays one model with one threshold, as on a single split; its threshold is chosen on
every minority sample the folds hold; a refit would have no validation data of its own to
choose its epoch or threshold on. What it gives up: the out-of-fold figure judges each
validation sample by the one fold model that did not train on it, while a test sample is
judged by the mean of the k mapped scores, so the estimate is exact for the rule on
out-of-fold data, not for the average (measured against test in RESULTS.md); between two
majority scores the scale is an interpolation, not a measured rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def knots(majority_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The map as tables over its bins: the bin edges (the distinct majority scores), and per
    bin (bin 0 lies below every majority score) its lower edge, its value there and its slope.

    At a majority score ``u`` the map is the share of majority scores strictly below ``u``;
    between two of them it is linear; above the highest it goes on with the slope that the
    spread of the majority scores gives one sample's share, so scores above every majority
    score keep their order (a threshold keeps its margin) and an affine change of a fold
    model's scores changes nothing; below the lowest it is 0.
    """
    ref = np.asarray(majority_scores, dtype=np.float64).ravel()
    u, counts = np.unique(ref.astype(np.float32), return_counts=True)
    n = ref.size
    below = np.concatenate([[0], np.cumsum(counts)[:-1]]) / n
    spread = float(u[-1] - u[0]) or 1.0
    upper_x = np.append(u[1:].astype(np.float64), u[-1] + spread)
    upper_y = np.append(below[1:], below[-1] + counts[-1] / n)
    slope = (upper_y - below) / (upper_x - u)
    zero = np.zeros(1)
    lower, base, slopes = (np.concatenate([zero, a]) for a in (u, below, slope))
    return u, lower.astype(np.float32), base.astype(np.float32), slopes.astype(np.float32)


def scale(majority_scores: np.ndarray, name: str) -> Any:
    """The map from a fold model's score to its validation majority's scale (:func:`knots`),
    as a Keras model of built-in layers, so the delivered model loads and serves without
    losslab."""
    import keras

    edges, lower, base, slope = knots(majority_scores)
    score = keras.Input(shape=(1,), name="score")
    index = keras.layers.Discretization(bin_boundaries=edges.tolist(), name="bin")(score)
    looked_up = []
    for label, table in (("lower", lower), ("base", base), ("slope", slope)):
        lookup = keras.layers.Embedding(len(table), 1, trainable=False, name=label)
        looked_up.append(keras.layers.Reshape((1,))(lookup(index)))
        lookup.set_weights([table.reshape(-1, 1)])
    at_lower, at_base, at_slope = looked_up
    above = keras.layers.Subtract()([score, at_lower])
    value = keras.layers.Add()([at_base, keras.layers.Multiply()([at_slope, above])])
    return keras.Model(score, value, name=name)


def delivered(models: Sequence[Any], y_val: Sequence[np.ndarray], p_val: Sequence[np.ndarray]):
    """The delivered model and the pooled out-of-fold scores on its scale.

    ``p_val[k]``: fold model ``k``'s raw scores on its validation fold, labels ``y_val[k]``.
    One fold: the model and its raw scores (the map is monotone, the threshold the same).
    """
    if len(models) == 1:
        return models[0], np.asarray(p_val[0])
    import keras

    inputs = keras.Input(shape=models[0].input_shape[1:], name="features")
    branches, oof = [], []
    for k, (model, y, p) in enumerate(zip(models, y_val, p_val, strict=True)):
        p = np.asarray(p, dtype=np.float32).reshape(-1, 1)
        to_scale = scale(p.ravel()[np.asarray(y).ravel() == 0], f"fold_{k}_majority_scale")
        branches.append(to_scale(model(inputs)))
        oof.append(keras.ops.convert_to_numpy(to_scale(p)))  # the same layers, the same scores
    mean = keras.layers.Average(name="fold_mean")(branches)
    return keras.Model(inputs, mean, name="fold_ensemble"), np.concatenate(oof)
