"""Remedies for a minority class: class weights, oversampling and output-bias initialisation.

Plain functions of the training labels; ``prepare`` bundles what ``fit`` needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from losslab.config import ConfigError, ImbalanceConfig


@dataclass
class Prepared:
    """What a strategy hands to training: class weights, an oversampling fraction, a bias."""

    class_weight: dict[int, float] | None = None
    oversample_fraction: float | None = None
    output_bias: np.ndarray | None = None


def ratio_weights(ratio: float) -> dict[int, float]:
    """Majority weight 1, minority weight ``ratio``. Binary labels name the minority 1 (the
    positive class a source chose), whatever the counts: on balanced or inverted labels the
    weight still goes to the class the user asked to rescue."""
    return {0: 1.0, 1: float(ratio)}


def balanced_weights(y: np.ndarray) -> dict[int, float]:
    """total / (n_classes * n_c) per class, scikit-learn's and the fraud tutorial's choice."""
    labels = np.asarray(y).astype(np.int64).ravel()
    classes = np.unique(labels)
    weights = compute_class_weight("balanced", classes=classes, y=labels)
    return {int(c): float(w) for c, w in zip(classes, weights, strict=True)}


def initial_bias(y: np.ndarray, task: str) -> np.ndarray:
    """Output bias matching the label prior, so the first loss is the prior's entropy.

    binary and multi-label: log(pos / neg) per output; multiclass: log of class frequencies.
    """
    y = np.asarray(y)
    if task == "multiclass":
        freq = np.bincount(y.astype(np.int64)) / len(y)
        return np.log(np.clip(freq, 1e-12, None)).astype(np.float32)
    pos = y.reshape(len(y), -1).sum(axis=0)
    neg = len(y) - pos
    empty = np.flatnonzero((pos == 0) | (neg == 0)).tolist()
    if empty:
        raise ConfigError(
            f"imbalance.initial_bias needs both classes in every output; outputs {empty} "
            "hold one class only in the training split"
        )
    return np.log(pos / neg).astype(np.float32)


def prepare(cfg: ImbalanceConfig, y_train: np.ndarray, task: str) -> Prepared:
    """Turn the strategy into what ``fit`` takes; refuse strategies the task cannot use."""
    if task == "multilabel" and cfg.strategy in ("class_weight", "balanced", "oversample"):
        raise ConfigError(
            f"imbalance={cfg.strategy} needs one label per sample; for multi-label data use "
            "loss=weighted_bce with one loss.kwargs.pos_weight per output"
        )
    if task == "multiclass" and cfg.strategy in ("class_weight", "oversample"):
        raise ConfigError(
            f"imbalance={cfg.strategy} is for binary data; for many classes use imbalance=balanced"
        )
    prepared = Prepared()
    if cfg.strategy == "class_weight":
        prepared.class_weight = ratio_weights(cfg.ratio)
    elif cfg.strategy == "balanced":
        prepared.class_weight = balanced_weights(y_train)
    elif cfg.strategy == "oversample":
        prepared.oversample_fraction = cfg.target_fraction
    if cfg.initial_bias:
        prepared.output_bias = initial_bias(y_train, task)
    return prepared


def augmenter(cfg: ImbalanceConfig, image_shape: tuple[int, ...], seed: int):
    """Small random shifts, rotations and zooms of flat images, as Keras' preprocessing layers
    draw them; empty borders are filled with 0 (background), not reflected.

    It runs inside the ``tf.data`` stream of :func:`oversampled`, so it reshapes with
    TensorFlow and calls each layer on its own: Keras' preprocessing layers compute with
    TensorFlow inside ``tf.data`` whatever the backend, a ``keras.Sequential`` of them (or
    ``keras.ops``) would use the JAX or PyTorch backend's ops there and fail.
    """
    import keras
    import tensorflow as tf

    layers = [
        keras.layers.RandomTranslation(cfg.shift, cfg.shift, "constant", seed=seed),
        keras.layers.RandomRotation(cfg.rotation, "constant", seed=seed + 1),
        keras.layers.RandomZoom(cfg.zoom, None, "constant", seed=seed + 2),
    ]

    def augment(flat):
        images = tf.reshape(flat, (-1, *image_shape))
        for layer in layers:
            images = layer(images, training=True)
        return tf.reshape(images, tf.shape(flat))

    return augment


def oversampled(
    x: np.ndarray,
    y: np.ndarray,
    fraction: float,
    batch_size: int,
    seed: int,
    augment_minority=None,
):
    """A repeating tf.data stream whose batches hold ``fraction`` minority samples.

    Returns ``(dataset, steps_per_epoch)``; an epoch sees as many samples as the training set.
    Each batch is ``round(fraction * batch_size)`` minority rows and the rest majority rows,
    drawn (with replacement) by index from a seed and the step number: two gathers per batch.
    ``sample_from_datasets`` picks class by class, element by element, which on the
    credit-card data made a step twenty times dearer than a class-weighted one
    (``benchmarks/oversampling.py``); the fixed share also keeps every batch at the target.
    ``augment_minority`` (see :func:`augmenter`) transforms the minority rows of each batch.
    """
    import tensorflow as tf

    labels = np.asarray(y).ravel()
    n_minority = min(batch_size - 1, max(1, round(fraction * batch_size)))
    n_majority = batch_size - n_minority
    parts = []
    for cls, n in ((1, n_minority), (0, n_majority)):
        mask = labels == cls
        parts.append((tf.constant(x[mask]), tf.constant(np.asarray(y)[mask]), n))

    def batch(step):
        xs, ys = [], []
        for i, (xc, yc, n) in enumerate(parts):
            pick = tf.random.stateless_uniform(
                [n],
                seed=tf.stack([tf.cast(seed, tf.int64), 2 * step + i]),
                maxval=tf.shape(xc, out_type=tf.int64)[0],
                dtype=tf.int64,
            )
            xs.append(tf.gather(xc, pick))
            ys.append(tf.gather(yc, pick))
        if augment_minority is not None:
            xs[0] = augment_minority(xs[0])
        return tf.concat(xs, axis=0), tf.concat(ys, axis=0)

    stream = tf.data.Dataset.counter().map(batch, num_parallel_calls=tf.data.AUTOTUNE)
    steps = math.ceil(len(x) / batch_size)
    return stream.prefetch(tf.data.AUTOTUNE), steps
