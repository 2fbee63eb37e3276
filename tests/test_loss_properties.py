"""Every loss preset, with the label shapes ``fit`` and ``evaluate`` really pass.

Binary labels reach a loss as (B,) against (B, 1) predictions; multi-label as (B, K);
categorical as one-hot (B, K) or, for the sparse loss, integer (B,). A loss that broadcasts
(B,) against (B, 1) scores a (B, B) matrix: perfect predictions then score worse than a
constant, which the first property catches.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from losslab import losses
from losslab.config import LossConfig

PROPERTY = settings(max_examples=25, deadline=None)

# preset -> (kwargs, kind of labels it takes)
PRESETS = {
    "bce": ({}, "sigmoid"),
    "weighted_bce": ({"pos_weight": 7.0}, "sigmoid"),
    "focal": ({"gamma": 2.0, "alpha": 0.75, "apply_class_balancing": True}, "sigmoid"),
    "categorical_ce": ({}, "one_hot"),
    "categorical_focal": ({"gamma": 2.0, "alpha": 0.25}, "one_hot"),
    "sparse_categorical_ce": ({}, "sparse"),
}
# label shapes per kind: "binary" (B,), "binary_col" (B, 1), "multilabel" (B, K)
SHAPES = {"sigmoid": ("binary", "binary_col", "multilabel"), "one_hot": ("k",), "sparse": ("k",)}
CASES = [(name, shape) for name, (_, kind) in PRESETS.items() for shape in SHAPES[kind]]


def loss_of(name: str, **kwargs) -> keras.losses.Loss:
    return losses.get(LossConfig(name=name, kwargs={**PRESETS[name][0], **kwargs}))


def batch(kind: str, shape: str, labels: np.ndarray, k: int):
    """Labels as ``fit`` passes them, with perfect and constant predictions."""
    if kind == "sigmoid":
        y = labels if shape != "multilabel" else labels.reshape(-1, k)
        perfect = np.clip(y, 0.0, 1.0).reshape(len(y), -1).astype("float32")
        constant = np.full_like(perfect, 0.5)
        if shape == "binary_col":
            y = y.reshape(-1, 1)
        return y.astype("float32"), perfect, constant
    ids = labels.astype(int) % k
    perfect = np.eye(k, dtype="float32")[ids]
    constant = np.full_like(perfect, 1.0 / k)
    y = ids if kind == "sparse" else perfect.copy()
    return y, perfect, constant


labels_strategy = st.integers(2, 24).flatmap(
    lambda n: st.lists(st.integers(0, 1), min_size=n * 3, max_size=n * 3)
)


@pytest.mark.parametrize("name, shape", CASES)
@PROPERTY
@given(bits=labels_strategy)
def test_perfect_predictions_score_lower_than_a_constant(name, shape, bits):
    kind, k = PRESETS[name][1], 3
    labels = np.array(bits, dtype="float32")
    if kind == "sigmoid" and shape != "multilabel":
        labels = labels[: len(labels) // 3]
    y, perfect, constant = batch(kind, shape, labels, k)
    loss = loss_of(name)
    assert float(loss(y, perfect)) < float(loss(y, constant))


@pytest.mark.parametrize("shape", ["binary", "binary_col", "multilabel"])
@PROPERTY
@given(bits=labels_strategy, seed=st.integers(0, 2**16))
def test_unit_weights_equal_keras_cross_entropy(shape, bits, seed):
    labels = np.array(bits, dtype="float32")
    if shape != "multilabel":
        labels = labels[: len(labels) // 3]
    y, perfect, _ = batch("sigmoid", shape, labels, 3)
    p = np.random.default_rng(seed).uniform(0.01, 0.99, perfect.shape).astype("float32")
    unit = float(loss_of("weighted_bce", pos_weight=1.0)(y, p))
    per_output = [1.0] * perfect.shape[1]
    unit_per_output = float(loss_of("weighted_bce", pos_weight=per_output)(y, p))
    reference = float(keras.losses.BinaryCrossentropy()(y, p))
    assert unit == pytest.approx(reference, rel=1e-5)
    assert unit_per_output == pytest.approx(reference, rel=1e-5)


@PROPERTY
@given(
    bits=st.lists(st.integers(0, 1), min_size=2, max_size=64),
    weight=st.floats(0.1, 500.0),
    seed=st.integers(0, 2**16),
)
def test_pos_weight_acts_as_a_sample_weight_on_positives(bits, weight, seed):
    """pos_weight w on (B,) labels is Keras' cross-entropy with sample weight w on positives."""
    y = np.array(bits, dtype="float32")
    p = np.random.default_rng(seed).uniform(0.01, 0.99, (len(y), 1)).astype("float32")
    weighted = float(loss_of("weighted_bce", pos_weight=weight)(y, p))
    sample_weight = np.where(y == 1, weight, 1.0).astype("float32")
    reference = float(keras.losses.BinaryCrossentropy()(y.reshape(-1, 1), p, sample_weight))
    assert weighted == pytest.approx(reference, rel=1e-4)


@pytest.mark.parametrize("name", ["bce", "weighted_bce", "focal"])
def test_binary_loss_is_the_same_for_flat_and_column_labels(name):
    rng = np.random.default_rng(3)
    y = (rng.random(50) < 0.2).astype("float32")
    p = rng.uniform(0.01, 0.99, (50, 1)).astype("float32")
    loss = loss_of(name)
    assert float(loss(y, p)) == pytest.approx(float(loss(y.reshape(-1, 1), p)), rel=1e-6)


@pytest.mark.parametrize("name", ["bce", "weighted_bce", "focal"])
def test_fit_with_flat_labels_learns_a_separable_problem(name):
    """Through ``fit`` itself, with (B,) labels: a trained model beats the constant prior."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4)).astype("float32")
    y = (x[:, 0] + 0.2 * x[:, 1] > 1.0).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.05), loss=loss_of(name))
    model.fit(x, y, epochs=30, batch_size=64, verbose=0)
    p = model.predict(x, verbose=0).ravel()
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, p) > 0.95


def test_every_loss_preset_is_in_these_properties():
    """A preset added to the config's choices without a row above would go untested."""
    from losslab.config import LossPreset

    open_ended = {"keras", "custom"}  # any Keras loss by name, any import path
    assert {str(p) for p in LossPreset} - open_ended == set(PRESETS)


@settings(max_examples=40, deadline=None)
@given(
    gamma=st.floats(0.0, 5.0),
    alpha=st.floats(0.0, 1.0),
    logits=st.lists(st.floats(-200.0, 200.0), min_size=2, max_size=16),
    positive=st.lists(st.booleans(), min_size=16, max_size=16),
)
def test_focal_loss_and_its_gradient_stay_finite_on_saturated_outputs(
    gamma, alpha, logits, positive
):
    """Sigmoid outputs of exactly 0 or 1 (float32 saturates past a logit of about 17): the
    loss and its gradient with respect to the logits are finite for every allowed gamma."""
    import tensorflow as tf

    kwargs = {"gamma": gamma, "alpha": alpha, "apply_class_balancing": True}
    loss = losses.get(LossConfig(name="focal", kwargs=kwargs))
    z = tf.Variable(np.array(logits, dtype=np.float32).reshape(-1, 1))
    y = np.array(positive[: len(logits)], dtype=np.float32)
    with tf.GradientTape() as tape:
        value = loss(y, tf.sigmoid(z))
    gradient = tape.gradient(value, z)
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(gradient.numpy()))
