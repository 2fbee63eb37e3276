"""Properties of the splitters and of the class-weight and bias computations, over many
generated label sets (hypothesis)."""

from __future__ import annotations

import keras
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from losslab import imbalance
from losslab.data.splits import split
from losslab.metrics import Counted, counted

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def binary_labels(draw, min_per_class: int = 2, max_size: int = 400) -> np.ndarray:
    n_min = draw(st.integers(min_per_class, max_size // 4))
    n_maj = draw(st.integers(n_min, max_size))
    y = np.array([1] * n_min + [0] * n_maj, dtype=np.float32)
    return np.random.default_rng(draw(st.integers(0, 2**16))).permutation(y)


@SETTINGS
@given(
    y=binary_labels(min_per_class=8),
    val=st.floats(0.1, 0.4),
    test=st.floats(0.1, 0.4),
    seed=st.integers(0, 1000),
)
def test_train_val_test_splits_partition_the_samples_and_keep_class_shares(y, val, test, seed):
    ids = np.arange(len(y), dtype=np.float64)[:, None]  # each sample's id as its only feature
    x_rest, y_rest, x_test, y_test = split(ids, y, test, seed)
    x_train, y_train, x_val, y_val = split(x_rest, y_rest, val, seed)
    parts = [x_train.ravel(), x_val.ravel(), x_test.ravel()]
    together = np.concatenate(parts)
    assert len(together) == len(y) and len(np.unique(together)) == len(y)  # no sample twice
    for x_part, y_part in ((x_train, y_train), (x_val, y_val), (x_test, y_test)):
        np.testing.assert_array_equal(y[x_part.ravel().astype(int)], y_part)  # labels follow
    share = y.mean()
    for y_part in (y_train, y_val, y_test):
        assert abs(y_part.sum() - share * len(y_part)) <= 1.0  # stratified to within a sample


@SETTINGS
@given(y=binary_labels(), seed=st.integers(0, 1000), fraction=st.floats(0.05, 0.5))
def test_tail_split_takes_the_unshuffled_end(y, seed, fraction):
    x = np.arange(len(y))[:, None]
    x_keep, _, x_out, _ = split(x, y, fraction, seed, how="tail")
    assert x_out.ravel().tolist() == list(range(len(x_keep), len(y)))


@SETTINGS
@given(y=binary_labels(min_per_class=1))
def test_balanced_weights_give_each_class_the_same_total_weight(y):
    weights = imbalance.balanced_weights(y)
    counts = np.bincount(y.astype(int))
    assert all(w > 0 for w in weights.values())
    totals = [weights[c] * counts[c] for c in (0, 1)]
    assert np.allclose(totals, len(y) / 2)  # total / (2 * n_c) per sample


@SETTINGS
@given(y=binary_labels(min_per_class=1))
def test_initial_bias_makes_the_first_prediction_the_prior(y):
    bias = imbalance.initial_bias(y, "binary")
    assert np.allclose(1 / (1 + np.exp(-bias)), y.mean(), rtol=1e-5)


@SETTINGS
@given(
    columns=st.lists(st.floats(0.02, 0.98), min_size=1, max_size=6),
    n=st.integers(50, 300),
    seed=st.integers(0, 1000),
)
def test_initial_bias_per_output_of_multilabel_data(columns, n, seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(columns))) < np.array(columns)).astype(np.float32)
    y[0], y[1] = 1, 0  # every output holds both values
    bias = imbalance.initial_bias(y, "multilabel")
    assert bias.shape == (len(columns),)
    assert np.allclose(1 / (1 + np.exp(-bias)), y.mean(axis=0), rtol=1e-5)


OUTCOMES = st.sampled_from(["complete", "pruned", "fail"])


@settings(max_examples=30, deadline=None)
@given(
    outcomes=st.lists(st.tuples(OUTCOMES, st.floats(0.0, 1.0)), min_size=1, max_size=12),
    direction=st.sampled_from(["maximize", "minimize"]),
)
def test_the_history_plot_shows_every_trial_and_the_studys_best(outcomes, direction):
    import matplotlib.pyplot as plt
    import optuna
    from matplotlib.collections import PathCollection
    from optuna.trial import TrialState

    from losslab.search.history import best_so_far, draw_history

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction)
    for outcome, value in outcomes:
        trial = study.ask()
        trial.report(value, step=0)
        state = {"complete": None, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}[outcome]
        study.tell(trial, value if state is None else None, state=state)
    fig = draw_history(study)
    points = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    drawn = sorted(int(n) for c in points for n, _ in c.get_offsets())
    assert drawn == sorted(t.number for t in study.trials if t.state.name != "FAIL")
    legend = " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    for state, word in (("COMPLETE", "complete"), ("PRUNED", "pruned"), ("FAIL", "failed")):
        count = sum(t.state.name == state for t in study.trials)
        assert (f"{word} ({count}" in legend) == bool(count)
    plt.close(fig)
    numbers, best = best_so_far(study.trials, direction == "maximize")
    if any(o == "complete" for o, _ in outcomes):
        assert best[-1] == study.best_value and numbers[-1] == study.trials[-1].number
        ordered = best if direction == "maximize" else [-b for b in best]
        assert ordered == sorted(ordered)  # never gets worse
    else:
        assert best == []


@settings(max_examples=25, deadline=None)
@given(
    n_outputs=st.integers(1, 6),
    batches=st.integers(1, 3),
    weighted=st.booleans(),
    one_hot=st.booleans(),
    flat=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_counted_figures_equal_keras_own_metrics(n_outputs, batches, weighted, one_hot, flat, seed):
    """One counted update gives each figure the value Keras' own metric gives it: of all
    outputs together (a binary job's tp ... recall) and of each class (``recall_<k>``), over
    several batches, with sample weights, for one-hot and multilabel targets (classes with no
    positive among them) and for flat binary labels against a column of scores."""
    rng = np.random.default_rng(seed)
    own = {
        "tp": keras.metrics.TruePositives,
        "fp": keras.metrics.FalsePositives,
        "tn": keras.metrics.TrueNegatives,
        "fn": keras.metrics.FalseNegatives,
        "precision": keras.metrics.Precision,
        "recall": keras.metrics.Recall,
    }
    pairs = [(f, None) for f in Counted.FIGURES] + [("recall", k) for k in range(n_outputs)]
    pairs += [("precision", n_outputs - 1)]
    ours = counted(pairs, n_outputs)
    keras_own = [own[f]() if k is None else own[f](class_id=k) for f, k in pairs]
    for _ in range(batches):
        n = int(rng.integers(1, 20))
        if one_hot:
            y_true = np.eye(n_outputs, dtype="float32")[rng.integers(0, n_outputs, n)]
        else:
            y_true = (rng.random((n, n_outputs)) < 0.3).astype("float32")
        if flat and n_outputs == 1:
            y_true = y_true.ravel()  # what fit gives a binary loss from a 1-d label array
        y_pred = rng.random((n, n_outputs)).astype("float32")
        weight = rng.random(n).astype("float32") if weighted else None
        for metric in (*ours, *keras_own):
            metric.update_state(y_true, y_pred, sample_weight=weight)
    assert len(ours[0].variables) == 4 and not any(m.variables for m in ours[1:])
    got = [float(m.result()) for m in ours]
    expected = [float(m.result()) for m in keras_own]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
