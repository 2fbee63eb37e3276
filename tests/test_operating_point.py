"""The operating point with a guarantee (``evaluation.threshold=fpr_bound``) against SciPy's
exact binomial interval, its refusal on validation too small to certify, and the test scores
read at the training split's prevalence."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from sklearn import metrics as skm

from losslab.config import ConfigError, EvaluationConfig
from losslab.evaluate import EvaluationError, choose_threshold
from losslab.operating_point import majority_needed
from losslab.prevalence import scores_at
from losslab.train import train
from tests.helpers import assert_nothing_recorded, compose

SETTINGS = settings(max_examples=60, deadline=None)
QUIET = ["trainer.verbose=0", "trainer.threads=1"]


def exact_bound(fp: int, n: int, confidence: float) -> float:
    """The one-sided Clopper-Pearson upper bound, from SciPy's binomial test."""
    return binomtest(fp, n, alternative="less").proportion_ci(confidence_level=confidence).high


@st.composite
def scored_validation(draw):
    """0/1 labels and rounded scores (ties, as real models give), the minority ranked higher."""
    n_pos = draw(st.integers(1, 80))
    n_neg = draw(st.integers(1, 3000))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    y = rng.permutation(np.r_[np.ones(n_pos), np.zeros(n_neg)])
    p = rng.beta(2, 5, len(y)) + draw(st.floats(0, 1)) * y * rng.random(len(y))
    return y, np.round(np.clip(p, 0, 1), draw(st.integers(1, 4)))


@SETTINGS
@given(
    data=scored_validation(),
    max_fpr=st.sampled_from([0.005, 0.01, 0.05, 0.2]),
    confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_fpr_bound_is_the_lowest_threshold_whose_exact_bound_keeps_the_budget(
    data, max_fpr, confidence
):
    y, p = data
    majority = p[y == 0]
    n = len(majority)
    cfg = EvaluationConfig(threshold="fpr_bound", max_fpr=max_fpr, confidence=confidence)
    if 1 - (1 - confidence) ** (1 / n) > max_fpr:  # not even zero false positives certify
        with pytest.raises(EvaluationError, match=f"validation holds {n} majority samples"):
            choose_threshold(y, p, cfg)
        return
    t = choose_threshold(y, p, cfg)
    assert exact_bound(int(np.sum(majority >= t)), n, confidence) <= max_fpr + 1e-12
    lower = p[p < t]  # every score when nothing may be called positive
    if len(lower):  # the next lower distinct threshold breaks the bound
        assert exact_bound(int(np.sum(majority >= lower.max())), n, confidence) > max_fpr


@SETTINGS
@given(max_fpr=st.floats(0.001, 0.5), confidence=st.floats(0.5, 0.999))
def test_the_majority_needed_is_the_fewest_whose_zero_false_positives_certify(max_fpr, confidence):
    n = majority_needed(max_fpr, confidence)
    assert exact_bound(0, n, confidence) <= max_fpr + 1e-9
    assert n == 1 or exact_bound(0, n - 1, confidence) > max_fpr - 1e-9


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1, math.nan])
def test_confidence_outside_the_open_unit_interval_is_refused(confidence):
    with pytest.raises(ConfigError, match=r"evaluation.confidence=.* it must lie in \(0, 1\)"):
        EvaluationConfig(confidence=confidence)


@pytest.mark.parametrize(
    "overrides, majority",
    [([], 30), (["data.folds=2"], 120)],  # with folds: every fold's validation together
    ids=["split", "folds"],
)
def test_validation_too_small_to_certify_is_refused_before_training(
    tmp_path, overrides, majority, mlflow_db
):
    """The default data validates on 30 9s: 1% at 95% needs 299 (1 - 0.05 ** (1/299) <= 0.01)."""
    cfg = compose(tmp_path, *QUIET, "evaluation.threshold=fpr_bound", *overrides)
    with pytest.raises(
        EvaluationError,
        match=rf"validation holds {majority} majority samples; .* needs at least 299",
    ):
        train(cfg)
    assert_nothing_recorded(tmp_path)


@pytest.mark.parametrize("overrides", [[], ["data.folds=2"]], ids=["split", "folds"])
def test_a_run_under_fpr_bound_logs_its_bound_and_selects_on_its_recall(
    tmp_path, overrides, capsys
):
    """At max_fpr 0.1 the default data's 30 validation 9s certify (29 needed). The objective
    a sweep selects on is the recall the bounded threshold delivers on validation."""
    cfg = compose(
        tmp_path,
        *QUIET,
        "tracking=none",
        "trainer.epochs=5",
        "evaluation.threshold=fpr_bound",
        "evaluation.max_fpr=0.1",
        "objective=val_recall_at_fpr",
        *overrides,
    )
    result = train(cfg)
    m = result.metrics
    val_majority = m["val_at_threshold_fp"] + m["val_at_threshold_tn"]
    assert val_majority == (30 if not overrides else 120)
    assert m["val_at_threshold_fpr_bound"] == pytest.approx(
        exact_bound(int(m["val_at_threshold_fp"]), int(val_majority), 0.95)
    )
    assert m["val_at_threshold_fpr_bound"] <= 0.1
    assert result.objective == m["val_at_threshold_recall"]
    assert m["test_minority_count"] == m["test_tp"] + m["test_fn"] == 60
    assert m["test_majority_count"] == m["test_tn"] + m["test_fp"] == 60
    shown = capsys.readouterr().out  # the summary says what the test split holds
    assert "test holds 60 minority and 60 majority samples (50.0%)\n" in shown
    assert "test weighted to the training split's 10.00% minority: precision " in shown
    assert f"{int(m['val_at_threshold_fp'])} false positives of {int(val_majority)} " in shown


@st.composite
def held_out_and_copies(draw):
    """A test set with both classes, and how many times each class is copied to build one
    at another prevalence."""
    n_pos, n_neg = draw(st.integers(1, 60)), draw(st.integers(1, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    y = np.r_[np.ones(n_pos), np.zeros(n_neg)]
    p = np.round(rng.beta(2, 5, len(y)) + 0.3 * y * rng.random(len(y)), draw(st.integers(1, 3)))
    return y, p, draw(st.integers(1, 4)), draw(st.integers(1, 30))


@SETTINGS
@given(case=held_out_and_copies(), threshold=st.floats(0, 1))
def test_scores_at_a_prevalence_are_the_scores_of_a_test_set_drawn_at_it(case, threshold):
    """Copying the minority ``k`` and the majority ``m`` times builds a test set at another
    prevalence; the reweighted scores of the original equal that set's plain scores (with
    ``k == m``: the test set's own prevalence, and its plain scores)."""
    y, p, k, m = case
    copies = np.where(y == 1, k, m)
    y_big, p_big = np.repeat(y, copies), np.repeat(p, copies)
    weighted = scores_at(y, p, threshold, float(np.mean(y_big)), "test_")
    pred = (p_big >= threshold).astype(int)
    plain = {
        "precision": skm.precision_score(y_big, pred, zero_division=0),
        "f1": skm.f1_score(y_big, pred, zero_division=0),
        "accuracy": skm.accuracy_score(y_big, pred),
        "pr_auc": skm.average_precision_score(y_big, p_big),
    }
    for name, value in plain.items():
        assert weighted[f"test_{name}_at_train_prevalence"] == pytest.approx(value, abs=1e-9)
