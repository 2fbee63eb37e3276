"""The objective a job with folds reports is the validation figure of the rule it delivers
(losslab.ensemble): over generated folds and fold models that score on different scales."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from losslab.config import to_objects
from losslab.data import Dataset
from losslab.train import FoldFit, Setup, outcome
from tests.helpers import compose

MAX_FPR = 0.05
TIE = 1e-6  # float32 layers against float64 here


def scored(n_majority: int, n_minority: int, shift: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Latent scores, all distinct (spaced far above float32 rounding), and their labels."""
    n = n_majority + n_minority
    ranks = rng.permutation(n).astype(np.float32) / n * 8 - 4
    y = np.r_[np.zeros(n_majority), np.ones(n_minority)].astype(np.float32)
    z = np.sort(ranks)[np.argsort(np.argsort(ranks + shift * y))]  # minority ranked higher
    return z.reshape(-1, 1), y


def fold_model(scale: float, offset: float) -> keras.Model:
    """A 'trained' model: the latent score on a scale of its own (a monotone map)."""
    inputs = keras.Input((1,))
    return keras.Model(inputs, keras.layers.Rescaling(scale, offset=offset)(inputs))


@st.composite
def folds_and_scales(draw):
    k = draw(st.integers(2, 3))
    sizes = [(draw(st.integers(40, 150)), draw(st.integers(5, 20))) for _ in range(k)]
    scales = [(draw(st.floats(0.05, 20.0)), draw(st.floats(-5.0, 5.0))) for _ in range(k)]
    return sizes, scales, draw(st.floats(0.0, 6.0)), draw(st.integers(0, 2**16))


@pytest.fixture(scope="module")
def conf(tmp_path_factory):
    """One composed config for every generated case (composing is most of a case's cost)."""
    overrides = ("objective=val_recall_at_fpr", f"evaluation.max_fpr={MAX_FPR}")
    return to_objects(compose(tmp_path_factory.mktemp("rule"), *overrides))


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x))


def job(conf, sizes, scales, shift: float, seed: int):
    rng = np.random.default_rng(seed)
    folds, fits = [], []
    for (n_maj, n_min), (scale, offset) in zip(sizes, scales, strict=True):
        x, y = scored(n_maj, n_min, shift, rng)
        folds.append(Dataset("fold", "binary", x, y, x, y, x, y, ["maj", "min"]))
        model = fold_model(scale, offset)
        fits.append(FoldFit(model, {"loss": [0.0]}, 0, predict(model, x)))
    x_test, y_test = scored(300, 60, shift, rng)
    ds = Dataset("test", "binary", x_test, y_test, x_test, y_test, x_test, y_test, ["maj", "min"])
    setup = Setup(conf, ds, folds, None, None, False, ["loss", "val_recall_at_fpr"])
    return outcome(setup, fits), folds, fits


def on_majority_scale(reference: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Written out with NumPy: at each distinct majority score the share strictly below it,
    linear in between, and beyond the top with the slope one sample's share over the spread."""
    ref = np.sort(reference.ravel().astype(np.float64))
    u = np.unique(ref)
    below = np.searchsorted(ref, u, side="left") / ref.size
    spread = (u[-1] - u[0]) or 1.0
    top = (ref.size - np.searchsorted(ref, u[-1], side="left")) / ref.size
    s = scores.ravel().astype(np.float64)
    inside = np.interp(s, u, below)
    beyond = below[-1] + (s - u[-1]) * top / spread
    return np.where(s < u[0], 0.0, np.where(s > u[-1], beyond, inside))


@settings(max_examples=15, deadline=None)
@given(case=folds_and_scales())
@example(case=([(99, 13), (90, 5), (40, 5)], [(1.0, 0.0)] * 3, 1.6875, 65535))  # a tie at t
def test_the_objective_is_the_delivered_rules_out_of_fold_recall(conf, case):
    sizes, scales, shift, seed = case
    result, folds, fits = job(conf, sizes, scales, shift, seed)
    t = result.evaluation.threshold
    called, clear_fp, tied, majority = [], 0, 0, 0
    for fold, fit in zip(folds, fits, strict=True):
        y = fold.y_val.ravel()
        reference = fit.p_val.ravel()[y == 0]
        # the delivered model's branch for this fold, the only model that did not train on it
        mapped = on_majority_scale(reference, fit.p_val)
        called.append(mapped[y == 1] >= t - TIE)
        clear_fp += int(np.sum(mapped[y == 0] >= t + TIE))
        tied += int(np.sum(np.abs(mapped[y == 0] - t) < TIE))
        majority += int(np.sum(y == 0))
    assert result.objective == pytest.approx(np.concatenate(called).mean(), abs=1e-12)
    assert result.objective == result.metrics["val_at_threshold_recall"]
    # a majority score within float32 rounding of the threshold is the model's to decide
    reported_fp = result.metrics["val_at_threshold_fp"]
    assert clear_fp <= reported_fp <= clear_fp + tied
    assert reported_fp / majority <= MAX_FPR
    # the test figures are those of the delivered model at the same threshold
    x_test, y_test = result.dataset.x_test, result.dataset.y_test.ravel()
    p = predict(result.model, x_test).ravel()
    on_scales = [
        on_majority_scale(fit.p_val.ravel()[fold.y_val.ravel() == 0], predict(fit.model, x_test))
        for fold, fit in zip(folds, fits, strict=True)
    ]
    expected = np.mean(on_scales, axis=0)
    np.testing.assert_allclose(p, expected, atol=1e-5)
    t = result.evaluation.threshold
    assert result.metrics["test_recall"] == pytest.approx(np.mean(p[y_test == 1] >= t))
    assert result.metrics["test_majority_recall"] == pytest.approx(np.mean(p[y_test == 0] < t))


@settings(max_examples=6, deadline=None)
@given(case=folds_and_scales(), rescaled=st.lists(st.floats(0.05, 20.0), min_size=3, max_size=3))
@example(  # exact ties between folds, two of them broken by float32 rounding on the new scale
    case=([(40, 10), (99, 20), (44, 5)], [(1.0, 0.0)] * 3, 0.0, 17), rescaled=[1.0, 0.625, 1.0]
)
def test_a_fold_models_scale_changes_nothing_delivered(conf, case, rescaled):
    """Fold models that rank alike but score on other scales: the same objective, threshold
    rule and test decisions (a raw threshold on pooled scores would move with the scales)."""
    sizes, scales, shift, seed = case
    first, folds, fits = job(conf, sizes, scales, shift, seed)
    other = [(a * r, b) for (a, b), r in zip(scales, rescaled, strict=False)]
    second, *_ = job(conf, sizes, other, shift, seed)
    assert first.objective == second.objective
    for key in ("test_recall", "test_majority_recall"):
        assert first.metrics[key] == pytest.approx(second.metrics[key])
    key = "val_final_partial_roc_auc"
    assert first.metrics[key] == pytest.approx(second.metrics[key], abs=tie_share(folds, fits))


def tie_share(folds, fits) -> float:
    """How far the standardised partial ROC AUC of the pooled out-of-fold scores may move when
    float32 rounding on another scale breaks their exact ties (equal shares of two folds'
    majorities): one minority-majority pair's share for each tied pair."""
    from losslab import ensemble

    y = np.concatenate([fold.y_val.ravel() for fold in folds])
    _, pooled = ensemble.delivered(
        [f.model for f in fits], [fold.y_val for fold in folds], [f.p_val for f in fits]
    )
    pooled = pooled.ravel().astype(np.float64)
    tied = np.sum(np.abs(pooled[y == 1][:, None] - pooled[y == 0][None, :]) < TIE)
    pairs = np.sum(y == 1) * np.sum(y == 0)
    return (tied + 1e-9) * 0.5 / (pairs * (MAX_FPR - MAX_FPR**2 / 2))
