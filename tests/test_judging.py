"""What a comparison is judged on: validation that holds enough minority samples, the exact
operating point (minority recall at a fixed false-positive rate), threshold rules that never
reward a dead model, metric directions, and search spaces that stay conditional."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from losslab import objectives
from losslab.config import ConfigError, EvaluationConfig
from losslab.data import DataError
from losslab.data.splits import split, stratified_folds
from losslab.evaluate import (
    CONSTANT_SPREAD,
    NEVER,
    SPREAD,
    EvaluationError,
    choose_threshold,
    degenerate,
    prediction_spread,
    recall_at_fpr,
)
from losslab.search import spaces

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def scored_labels(draw):
    """0/1 labels with both classes and scores with ties (rounded), as real models give."""
    n_pos = draw(st.integers(1, 60))
    n_neg = draw(st.integers(1, 400))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    y = rng.permutation(np.r_[np.ones(n_pos), np.zeros(n_neg)])
    p = np.round(rng.beta(2, 5, len(y)) + 0.3 * y * rng.random(len(y)), draw(st.integers(1, 4)))
    return y, np.clip(p, 0, 1)


@SETTINGS
@given(data=scored_labels(), max_fpr=st.sampled_from([0.0, 0.01, 0.05, 0.2]))
def test_recall_at_fpr_is_the_best_recall_within_the_false_positive_budget(data, max_fpr):
    y, p = data
    recall, t = recall_at_fpr(y, p, max_fpr)
    neg, pos = p[y == 0], p[y == 1]
    assert np.mean(neg >= t) <= max_fpr + 1e-12  # the threshold keeps the budget
    assert recall == pytest.approx(np.mean(pos >= t))  # and its recall is what is reported
    lower = p[p < t]
    if len(lower):  # the next threshold down would break the budget or gain nothing
        nxt = lower.max()
        assert np.mean(neg >= nxt) > max_fpr + 1e-12 or np.mean(pos >= nxt) == recall


def test_a_constant_model_has_no_recall_at_a_false_positive_budget():
    y = np.r_[np.ones(10), np.zeros(90)]
    recall, t = recall_at_fpr(y, np.full(100, 0.3), 0.01)
    assert recall == 0.0 and t == NEVER


@SETTINGS
@given(
    row=st.lists(st.floats(0, 1), min_size=1, max_size=4),
    n=st.integers(1, 300),
    moved=st.floats(CONSTANT_SPREAD * 2, 1),
)
def test_a_model_is_degenerate_exactly_when_its_validation_predictions_are_constant(row, n, moved):
    """Every sample answered alike (any number of outputs): degenerate; one output of one
    sample moved by more than the tolerance: a model."""
    constant = np.tile(np.float32(row), (n + 1, 1))
    assert degenerate({SPREAD: prediction_spread(constant)}) is not None
    varied = constant.astype(float)
    varied[n, len(row) - 1] = row[-1] + moved if row[-1] + moved <= 1 else row[-1] - moved
    assert degenerate({SPREAD: prediction_spread(varied)}) is None
    assert degenerate({SPREAD: float("nan")}) is not None  # NaN answers are no model either
    assert degenerate({}) is None  # a run that recorded no spread is not judged


def test_a_dead_model_scores_zero_on_recall_at_precision():
    """No threshold reaches the precision floor: nothing is called positive (recall 0), never
    the most precise threshold, which for a constant model calls everything positive."""
    y = np.r_[np.ones(10), np.zeros(90)]
    cfg = EvaluationConfig(threshold="recall_at_precision", min_precision=0.5)
    t = choose_threshold(y, np.full(100, 0.3), cfg, min_positives=10)
    assert t == NEVER and not np.any(np.full(100, 0.3) >= t)


@pytest.mark.parametrize("rule", ["f1", "recall_at_fpr", "fpr_bound", "recall_at_precision"])
@pytest.mark.parametrize(
    "positives, negatives", [(0, 50), (50, 0), (3, 50)], ids=["no minority", "no majority", "3"]
)
def test_thresholds_on_too_few_samples_are_refused_never_replaced(rule, positives, negatives):
    y = np.r_[np.ones(positives), np.zeros(negatives)]
    p = np.linspace(0, 1, len(y))
    with pytest.raises(EvaluationError, match=rf"validation holds {positives} minority"):
        choose_threshold(y, p, EvaluationConfig(threshold=rule), min_positives=10)
    fixed = EvaluationConfig(threshold="fixed", fixed_threshold=0.4)
    assert choose_threshold(y, p, fixed, min_positives=10) == 0.4


@st.composite
def imbalanced(draw):
    n_min = draw(st.integers(2, 120))  # a stratified split needs two of each class
    n_maj = draw(st.integers(n_min, 2000))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return rng.permutation(np.r_[np.ones(n_min), np.zeros(n_maj)]).astype(np.float32)


@SETTINGS
@given(y=imbalanced(), fraction=st.floats(0.01, 0.4), floor=st.integers(0, 30))
def test_validation_holds_the_minority_floor_or_the_split_is_refused(y, fraction, floor):
    x = np.arange(len(y))[:, None]
    try:
        x_keep, y_keep, x_out, y_out = split(x, y, fraction, 0, min_per_class=floor)
    except DataError as err:
        assert f"data.min_val_minority={floor}" in str(err)
        assert y.sum() < 2 * floor  # refused only when the minority cannot give both parts
        return
    assert y_out.sum() >= floor and y_keep.sum() >= floor
    assert sorted(np.r_[x_keep.ravel(), x_out.ravel()]) == list(range(len(y)))


@SETTINGS
@given(y=imbalanced(), k=st.integers(2, 6), floor=st.integers(0, 15))
def test_folds_cover_every_sample_once_with_the_floor_in_each(y, k, floor):
    try:
        folds = stratified_folds(y, k, 0, floor)
    except DataError as err:
        assert "data.folds" in str(err)
        return
    held_out = np.concatenate([val for _, val in folds])
    assert sorted(held_out) == list(range(len(y)))
    for train, val in folds:
        assert y[val].sum() >= floor and y[train].sum() >= floor
        assert not set(train) & set(val)


@pytest.mark.parametrize(
    "metric, mode, expected",
    [
        ("val_loss", "auto", False),
        ("val_recall_at_fpr", "auto", True),
        ("val_pr_auc", "auto", True),
        ("val_fp", "auto", False),
        ("val_recall_3", "auto", True),
        ("test_at_0.5_majority_recall", "auto", True),
        ("val_loss", "max", True),
    ],
)
def test_metric_directions(metric, mode, expected):
    assert objectives.maximizes(metric, mode) is expected


def test_the_objective_follows_its_configured_direction_and_unknown_names_need_one():
    assert objectives.maximizes("val_custom", "auto", "val_custom", "minimize") is False
    with pytest.raises(ConfigError, match="no known direction"):
        objectives.maximizes("val_custom")
    assert objectives.direction_of("val_loss") == "minimize"
    assert objectives.direction_of("val_fn") == "minimize"


@pytest.mark.parametrize("source, augment", [("image_pair", True), ("table", False)])
def test_remedy_parameters_are_suggested_only_under_their_remedy(source, augment):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    config = OmegaConf.create({"data": {"source": source}})
    seen = set()
    for _ in range(80):
        trial = study.ask()
        spaces.remedies(config, trial)
        params = trial.params
        seen.add(params["imbalance"])
        assert ("loss.kwargs.gamma" in params) == (params["loss"] == "focal")
        own_weight = params["imbalance"] == "none"  # one minority weight per trial
        assert ("loss.kwargs.pos_weight" in params) == (
            params["loss"] == "weighted_bce" and own_weight
        )
        assert ("loss.kwargs.alpha" in params) == (params["loss"] == "focal" and own_weight)
        assert ("imbalance.ratio" in params) == (params["imbalance"] == "class_weight")
        assert ("imbalance.shift" in params) == (params["imbalance"] == "oversample_augment")
        study.tell(trial, 0.0)
    assert ("oversample_augment" in seen) is augment
