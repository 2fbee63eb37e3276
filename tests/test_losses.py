"""Each loss and imbalance remedy changes the training objective as it should."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from losslab import imbalance, losses, models
from losslab.config import ImbalanceConfig, LossConfig, ModelConfig
from losslab.data.dataset import ModelShape


def toy(n: int = 200, pos: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (rng.random(n) < pos).astype("float32")
    y[:2] = 1.0
    return x, y


def first_epoch_loss(y, x, loss, class_weight=None, bias=None) -> float:
    """Loss of one full-batch epoch with a zero learning rate: the objective itself."""
    keras.utils.set_random_seed(1)
    model = models.build(
        ModelConfig(units=[16], dropout=0.0), ModelShape((x.shape[1],), 1, "binary"), bias
    )
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=loss)
    hist = model.fit(
        x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0, class_weight=class_weight
    )
    return hist.history["loss"][0], model.predict(x, verbose=0).ravel()


def bce(y, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_class_weight_ratio_scales_the_minority_term():
    x, y = toy()
    cw = imbalance.ratio_weights(100.0)
    assert cw == {1: 100.0, 0: 1.0}
    plain, p = first_epoch_loss(y, x, losses.get(LossConfig(name="bce")))
    weighted, _ = first_epoch_loss(y, x, losses.get(LossConfig(name="bce")), class_weight=cw)
    per_sample = bce(y, p)
    assert plain == pytest.approx(per_sample.mean(), rel=1e-4)
    expected = (per_sample * np.where(y == 1, 100.0, 1.0)).mean()
    assert weighted == pytest.approx(expected, rel=1e-4)


def test_balanced_weights_follow_total_over_classes_times_count():
    y = np.array([0] * 90 + [1] * 10)
    assert imbalance.balanced_weights(y) == pytest.approx({0: 100 / (2 * 90), 1: 100 / (2 * 10)})


def test_initial_bias_gives_the_prior_entropy_as_first_loss():
    x, y = toy(n=1000, pos=0.05)
    bias = imbalance.initial_bias(y, "binary")
    pos = y.mean()
    assert bias[0] == pytest.approx(np.log(pos / (1 - pos)), rel=1e-5)
    with_bias, p = first_epoch_loss(y, x, "binary_crossentropy", bias=bias)
    without, _ = first_epoch_loss(y, x, "binary_crossentropy")
    prior_entropy = -(pos * np.log(pos) + (1 - pos) * np.log(1 - pos))
    assert abs(with_bias - prior_entropy) < 0.1
    assert without > with_bias + 0.2
    assert abs(p.mean() - pos) < 0.05


def test_weighted_bce_weights_the_positive_term_only():
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    p = np.array([[0.7], [0.2], [0.4], [0.9]])
    one = losses.get(LossConfig(name="weighted_bce", kwargs={"pos_weight": 1.0}))
    three = losses.get(LossConfig(name="weighted_bce", kwargs={"pos_weight": 3.0}))
    ref = keras.losses.BinaryCrossentropy()(y, p)
    assert float(one(y, p)) == pytest.approx(float(ref), rel=1e-4)
    per = bce(y.ravel(), p.ravel())
    expected = (per * np.where(y.ravel() == 1, 3.0, 1.0)).mean()
    assert float(three(y, p)) == pytest.approx(expected, rel=1e-4)


def test_weighted_bce_takes_one_weight_per_output():
    y = np.array([[1.0, 0.0], [1.0, 1.0]])
    p = np.full((2, 2), 0.5)
    loss = losses.get(LossConfig(name="weighted_bce", kwargs={"pos_weight": [1.0, 5.0]}))
    ln2 = np.log(2)
    expected = np.mean([(ln2 * 1 + ln2) / 2, (ln2 * 1 + ln2 * 5) / 2])
    assert float(loss(y, p)) == pytest.approx(expected, rel=1e-4)


def test_focal_alpha_counts_because_class_balancing_is_on():
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    p = np.array([[0.3], [0.2], [0.6], [0.7]])
    kw = {"gamma": 2.0, "apply_class_balancing": True}
    a = losses.get(LossConfig(name="focal", kwargs={**kw, "alpha": 0.25}))
    b = losses.get(LossConfig(name="focal", kwargs={**kw, "alpha": 0.75}))
    assert float(a(y, p)) != pytest.approx(float(b(y, p)))
    plain = losses.get(
        LossConfig(name="focal", kwargs={"gamma": 0.0, "alpha": 0.5, "apply_class_balancing": True})
    )
    assert float(plain(y, p)) == pytest.approx(0.5 * bce(y, p).mean(), rel=1e-4)


def test_any_keras_loss_by_name_and_bad_kwargs_are_named():
    loss = losses.get(
        LossConfig(name="keras", class_name="BinaryCrossentropy", kwargs={"label_smoothing": 0.1})
    )
    assert isinstance(loss, keras.losses.BinaryCrossentropy)
    assert loss.get_config()["label_smoothing"] == 0.1
    with pytest.raises(ValueError, match="bad loss.kwargs"):
        losses.get(LossConfig(name="focal", kwargs={"gama": 2.0}))


def test_custom_loss_by_import_path():
    loss = losses.get(
        LossConfig(
            name="custom",
            _target_="tests.custom_losses.AsymmetricLoss",
            kwargs={"alpha": 2.0, "beta": 0.5},
        )
    )
    assert (loss.alpha, loss.beta) == (2.0, 0.5)
    with pytest.raises(ValueError, match="cannot be imported"):
        losses.get(LossConfig(name="custom", _target_="tests.custom_losses.Nope"))


def test_loss_that_does_not_fit_the_task_is_refused():
    with pytest.raises(ValueError, match="binary data has sigmoid outputs"):
        losses.check_task(LossConfig(name="categorical_ce"), "binary")
    with pytest.raises(ValueError, match="multiclass data needs one of"):
        losses.check_task(LossConfig(name="focal"), "multiclass")


def test_oversampled_stream_reaches_the_target_fraction():
    x, y = toy(n=2000, pos=0.02)
    stream, steps = imbalance.oversampled(x, y, 0.3, batch_size=256, seed=0)
    assert steps == 8
    labels = np.concatenate([b[1].numpy() for b in stream.take(40)])
    assert abs(labels.mean() - 0.3) < 0.03


def test_strategies_that_do_not_fit_the_task_are_refused():
    y = np.zeros((10, 3))
    with pytest.raises(ValueError, match="loss=weighted_bce"):
        imbalance.prepare(ImbalanceConfig(strategy="class_weight"), y, "multilabel")


@settings(max_examples=40, deadline=None)
@given(
    n_pos=st.integers(1, 200),
    n_neg=st.integers(1, 200),
    ratio=st.floats(0.1, 500.0, allow_nan=False),
)
def test_the_class_weight_ratio_goes_to_the_positive_class_whatever_the_counts(n_pos, n_neg, ratio):
    """Label 1 is the class a source chose to rescue; balanced or inverted counts must not
    hand its weight to the other class."""
    y = np.array([1] * n_pos + [0] * n_neg)
    cfg = ImbalanceConfig(strategy="class_weight", ratio=ratio)
    weights = imbalance.prepare(cfg, y, "binary").class_weight
    assert weights[1] / weights[0] == pytest.approx(ratio)
    assert weights[0] == 1.0


@pytest.mark.parametrize(("decay", "expected"), [(None, 0.004), (0.0, 0.0), (0.01, 0.01)])
def test_adamw_takes_the_weight_decay_given_even_zero(decay, expected):
    from losslab.config import OptimizerConfig
    from losslab.train import _optimizer

    built = _optimizer(OptimizerConfig(name="adamw", weight_decay=decay))
    assert built.weight_decay == pytest.approx(expected)
