"""Intervals over repeats and over the test set, and paired comparisons (losslab.uncertainty)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from losslab.evaluate import recall_at_fpr
from losslab.uncertainty import (
    adjust,
    interval_metrics,
    over_repeats,
    over_test_set,
    paired,
    point_figures,
)


@st.composite
def scored_test_sets(draw):
    """Binary labels with both classes and scores rounded so ties occur, as sigmoid outputs
    of a saturated model do; a threshold that may or may not be one of the scores."""
    n_pos = draw(st.integers(1, 40))
    n_neg = draw(st.integers(1, 300))
    decimals = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    p = np.round(rng.beta(2, 5, len(y)) + y * rng.uniform(0, 0.6), decimals).clip(0, 1)
    threshold = draw(st.sampled_from([float(p[0]), float(p[-1]), 0.5, 0.123]))
    return y, p, threshold, draw(st.sampled_from([0.0, 0.01, 0.1]))


@given(scored_test_sets())
@settings(max_examples=150, deadline=None)
def test_the_counted_figures_are_scikit_learns(case):
    y, p, t, max_fpr = case
    recall, majority, precision, at_fpr, pr_auc = point_figures(y, p, t, max_fpr)
    predicted = (p >= t).astype(int)
    assert recall == pytest.approx(skm.recall_score(y, predicted))
    assert majority == pytest.approx(skm.recall_score(1 - y, 1 - predicted))
    if predicted.any():
        assert precision == pytest.approx(skm.precision_score(y, predicted))
    assert at_fpr == pytest.approx(recall_at_fpr(y, p, max_fpr)[0])
    assert pr_auc == pytest.approx(skm.average_precision_score(y, p))


def _scores(n_pos: int, n_neg: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    return y, rng.normal(size=len(y)) + 1.5 * y


def test_a_larger_test_set_narrows_the_test_interval():
    widths = []
    for n in (50, 800):
        y, p = _scores(n, 10 * n, seed=1)
        found = over_test_set(y, p, 1.0, 0.05)
        widths.append({k: hi - lo for k, (lo, hi) in found.items()})
    for name in widths[0]:
        assert widths[1][name] < 0.5 * widths[0][name], name  # 16x the data: about 1/4 as wide


def test_the_test_interval_covers_the_truth_about_95_percent_of_the_time():
    """Test sets drawn from one known population: the recall interval holds the population's
    recall at the threshold in most draws (a bootstrap's coverage is approximate)."""
    truth = 0.5  # normal scores shifted by 1.0 above a threshold of 1.0: half the minority
    held = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        y = np.r_[np.ones(60, int), np.zeros(600, int)]
        p = rng.normal(size=len(y)) + 1.0 * y
        low, high = over_test_set(y, p, 1.0, 0.05, seed=seed)["recall"]
        held += low <= truth <= high
    assert 85 <= held <= 100


def test_a_run_logs_each_interval_beside_its_figure():
    y, p = _scores(30, 300, seed=2)
    logged = interval_metrics(y, p, 1.0, 0.01)
    assert set(logged) == {
        f"test_{name}_ci_{side}"
        for name in ("recall", "majority_recall", "precision", "recall_at_fpr", "pr_auc")
        for side in ("low", "high")
    }
    assert all(0 <= v <= 1 for v in logged.values())


@given(st.lists(st.floats(0, 1), min_size=3, max_size=12), st.integers(2, 5))
@settings(max_examples=60, deadline=None)
def test_more_repeats_of_the_same_spread_narrow_the_interval(values, times):
    """The same values seen ``times`` as often: the mean's interval shrinks (as 1/sqrt(n))."""
    few, many = over_repeats(values), over_repeats(values * times)
    assert few.mean == pytest.approx(many.mean)
    if few.high - few.low > 1e-9:
        assert many.high - many.low < few.high - few.low
    assert few.low <= few.mean <= few.high or np.isnan(few.low)


def test_one_repeat_has_no_interval():
    one = over_repeats([0.7])
    assert one.mean == 0.7 and np.isnan(one.low) and str(one) == "0.700"


@given(st.lists(st.floats(0, 1), min_size=2, max_size=10))
@settings(max_examples=60, deadline=None)
def test_identical_groups_are_not_distinguishable(values):
    (d,) = adjust([paired("a", values, "b", list(values))])
    assert not d.distinguishable() and d.mean == 0


@given(
    st.lists(st.floats(0.2, 0.6), min_size=5, max_size=10),
    st.floats(0.25, 0.35),
    st.integers(0, 1000),
)
@settings(max_examples=60, deadline=None)
def test_a_shifted_group_is_distinguished_and_a_noisy_one_is_not(values, shift, seed):
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-0.02, 0.02, len(values))
    shifted = [v + shift + e for v, e in zip(values, noise, strict=True)]
    (d,) = adjust([paired("shifted", shifted, "base", values)])
    assert d.distinguishable() and d.low > 0 and d.mean == pytest.approx(shift, abs=0.02)
    # as many ups as downs (one more up where the count is odd), in a random order: noise
    # around no shift (a free coin can come up 9 times of 10, which is a shift)
    signs = rng.permutation(([0.3, -0.3] * len(values))[: len(values)])
    coin = [v + s for v, s in zip(values, signs, strict=True)]
    (n,) = adjust([paired("coin", coin, "base", values)])
    assert n.low < 0 < n.high or not n.distinguishable()


def test_adjusting_for_many_pairs_can_undo_a_lone_difference():
    """p = 0.02 alone is told apart; among 20 pairs where nothing else differs it is not."""
    a = [0.50, 0.60, 0.55, 0.70, 0.65]
    b = [0.45, 0.52, 0.51, 0.60, 0.62]
    (alone,) = adjust([paired("a", a, "b", b)])
    assert alone.distinguishable()
    many = adjust([paired("a", a, "b", b)] + [paired("c", a, "d", a[::-1])] * 19)
    assert not many[0].distinguishable()
