"""The small pure pieces, directly: override quoting, curve thinning, the confusion table,
process liveness, param flattening, and what an abandoned metric writer hands back."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from mlflow.entities import Metric

from hydra_plugins.losslab_optuna_sweeper.search_space import as_override, override_value
from losslab.evaluate import Evaluation, curve_points, format_confusion
from losslab.tracking import stale, tag_keys
from losslab.tracking.redact import flatten
from losslab.tracking.writer import MetricWriter, log_in_batches

# each test records into a new store of its own, copied (tests/helpers.py: new_store)
pytestmark = pytest.mark.usefixtures("mlflow_db")


@pytest.mark.parametrize(
    "value",
    [
        "focal",
        "it's",
        "back\\slash",
        "ends\\",
        "a\\'b",
        "a b,c",
        "1e-3",
        "null",
        "true",
        0.001,
        7,
        None,
        True,
        False,
        1e-09,
    ],
)
def test_an_override_reads_back_as_the_value_it_was_made_of(value):
    (parsed,) = OverridesParser.create().parse_overrides([as_override("some.key", value)])
    assert parsed.value() == value
    assert type(parsed.value()) is type(value)


def test_strings_are_quoted_so_they_stay_strings():
    assert override_value("1e-3") == "'1e-3'" and override_value(1e-3) == "0.001"


def _evaluation(y: np.ndarray, p: np.ndarray, task: str = "binary") -> Evaluation:
    return Evaluation(task, 0.5, {}, np.zeros((2, 2)), None, ["a", "b"], y, p)


@pytest.mark.parametrize("n, max_points", [(10, 200), (5000, 200), (5000, 7)])
def test_curve_points_are_thinned_but_keep_both_ends(n, max_points):
    rng = np.random.default_rng(0)
    y = (rng.random(n) < 0.3).astype(int)
    y[:2] = [0, 1]
    curves = curve_points(_evaluation(y, rng.random(n)), max_points)
    for kind, (xs, ys) in {"roc": ("fpr", "tpr"), "pr": ("recall", "precision")}.items():
        x, v = curves[kind][xs], curves[kind][ys]
        assert len(x) == len(v) <= max_points
        assert {x[0], x[-1]} == {0.0, 1.0}  # the curve still spans the whole axis
    assert curves["roc"]["fpr"] == sorted(curves["roc"]["fpr"])


@pytest.mark.parametrize(
    "names, matrix, expected",
    [
        (
            ["9", "4"],
            [[1009, 0], [982, 0]],
            [
                "true \\ pred       9     4",
                "9              1009     0",
                "4               982     0",
            ],
        ),
        (
            ["ankle boot", "coat"],
            [[5, 12345], [0, 7]],
            [
                "true \\ pred    ankle boot        coat",
                "ankle boot              5       12345",
                "coat                    0           7",
            ],
        ),
    ],
)
def test_the_confusion_table_aligns_names_and_counts(names, matrix, expected):
    ev = Evaluation("binary", 0.5, {}, np.array(matrix), None, names, np.zeros(1), np.zeros(1))
    assert format_confusion(ev).splitlines() == expected


def test_a_process_is_alive_until_it_exits_and_other_hosts_are_unknown():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    token = stale.process_token(child.pid)
    assert stale.is_alive(token) is True
    child.kill()
    child.wait()
    assert stale.is_alive(token) is False
    assert stale.is_alive(stale.process_token()) is True
    host, pid, ticks = stale.process_token().rsplit(":", 2)
    assert stale.is_alive(f"{host}:{pid}:{int(ticks) + 1}") is False  # a reused pid
    assert stale.is_alive(f"not-{socket.gethostname()}:{os.getpid()}:1") is None
    assert stale.is_alive("garbage") is None


@pytest.mark.parametrize(
    "tree, flat",
    [
        ({"a": {"b": 1, "c": {"d": "x"}}}, {"a.b": 1, "a.c.d": "x"}),
        ({"units": [64, 32], "empty": {}}, {"units": [64, 32], "empty": {}}),
        ({}, {}),
        ({"k": None}, {"k": None}),
    ],
)
def test_flatten_joins_keys_with_dots_and_keeps_lists_whole(tree, flat):
    assert flatten(tree) == flat


class _DownStore:
    """A tracking client whose every request fails, as an unreachable server's does."""

    def __init__(self) -> None:
        self.calls = 0

    def log_batch(self, run_id, metrics=(), params=(), synchronous=True):
        self.calls += 1
        raise ConnectionError("store away")


def test_an_abandoned_writer_hands_back_every_point_it_could_not_store():
    store = _DownStore()
    writer = MetricWriter(store, "run", interval_s=0.01, retry_s=0.01)
    for step in range(30):
        writer.add(step, {"loss": float(step), "acc": 0.5}, "batch/")
    writer.flush(wait=False)
    unsent = writer.abandon()
    assert sorted((m.key, m.step) for m in unsent) == sorted(
        (k, s) for s in range(30) for k in ("batch/loss", "batch/acc")
    )
    assert all(isinstance(m, Metric) for m in unsent)
    writer.close(timeout=1)


class _Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[int, int]] = []

    def log_batch(self, run_id, metrics=(), params=()):
        self.requests.append((len(metrics), len(params)))


@pytest.mark.parametrize("n_metrics, n_params", [(0, 0), (1000, 0), (2501, 0), (0, 201)])
def test_batches_stay_within_mlflows_limits_and_lose_nothing(n_metrics, n_params):
    from mlflow.entities import Param

    client = _Recorder()
    metrics = [Metric("m", 1.0, 0, i) for i in range(n_metrics)]
    params = [Param(f"p{i}", "v") for i in range(n_params)]
    log_in_batches(client, "run", metrics, params)
    assert all(m <= 1000 and p <= 100 for m, p in client.requests)
    assert sum(m for m, _ in client.requests) == n_metrics
    assert sum(p for _, p in client.requests) == n_params


def test_run_names_say_what_a_job_varies():
    """Against the sweep's shared overrides, read as Hydra reads them (a job's copy has its
    colons escaped); sweeps, Hydra's own settings and long floats never clutter a name."""
    from losslab.tracking import names

    sweep = ["loss=focal,bce", "tracking.uri=http://h:5000", "trainer.epochs=2"]
    shared = names.shared_overrides(sweep)
    escaped = r"tracking.uri=http\://h\:5000"
    job = ["loss=focal", escaped, "trainer.epochs=2", "++hydra.job.env_set.A=1"]
    assert names.job_name(0, job, shared) == "#0 loss=focal"
    assert names.short(sweep) == "loss=focal,bce uri=http://h:5000 epochs=2"
    assert names.short(["optimizer.lr=0.000123456789", "model.lr=2"]) == (
        "optimizer.lr=0.000123 model.lr=2"
    )
    assert names.single_name([]) == "defaults"
    assert names.marked("#1 lr=0.1", "PRUNED") == "[pruned] #1 lr=0.1"
    assert names.marked("#1 lr=0.1", "FINISHED") == "#1 lr=0.1"


def test_comparison_legends_stay_clear_of_the_plots_with_30_runs(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from losslab import compare

    drawn = []
    monkeypatch.setattr(compare.plt, "close", drawn.append)  # keep the figures to measure
    curve = {"roc": {"fpr": [0, 0.01, 1], "tpr": [0, 0.5, 1]}}
    curve["pr"] = {"recall": [0, 0.5, 1], "precision": [1, 0.9, 0.5]}
    runs = {f"#{i} lr=0.00{i % 10 + 1} dropout=0.{i % 9}": curve for i in range(30)}
    palette = compare.Palette({n: f"C{i % 10}" for i, n in enumerate(runs)}, {n: n for n in runs})
    for kind in ("roc", "pr"):
        path = compare._curves_plot(runs, palette, kind, tmp_path / f"{kind}.png")
        fig = drawn[-1]
        (ax,) = fig.axes
        renderer = fig.canvas.get_renderer()
        legend = ax.get_legend().get_window_extent(renderer)
        assert not legend.overlaps(ax.get_window_extent(renderer))
        assert len(ax.get_legend().get_texts()) == 30
        assert path.stat().st_size > 0
        plt.close(fig)


def test_reading_runs_back_leaves_mlflows_tracking_uri_as_it_was(tmp_path, monkeypatch):
    """``mlflow.search_runs`` needs the global URI; setting it also exports it to every
    subprocess started later, which would then record into this store."""
    import mlflow
    from mlflow import MlflowClient

    from losslab.compare import find_runs

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    client.create_run(client.create_experiment("read-back"))
    _, runs = find_runs(client, "read-back")
    assert len(runs) == 1
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert mlflow.get_tracking_uri() == before


@pytest.mark.parametrize(
    "keys",
    [
        ["loss", "pr_auc", "tp", "fp", "fn", "tn", "learning_rate", "epoch_time_s"],
        ["loss", "macro_f1", "min_recall"],  # multi-class: no counts
        ["loss", "auc"],  # no validation at all
    ],
)
def test_learning_curves_draw_each_metric_once_on_the_panel_of_its_scale(keys):
    from losslab.plots import COUNTS, NOT_CURVES, curve_panels

    history = {k: [0.5, 0.4] for k in keys}
    if "pr_auc" in keys:
        history |= {f"val_{k}": [0.5, 0.4] for k in keys if k not in NOT_CURVES}
        history["val_recall_at_fpr"] = [0.1, 0.2]  # validation only
    panels = curve_panels(history)
    drawn = [k for shown in panels.values() for k in shown]
    assert len(drawn) == len(set(drawn))
    names = {k.removeprefix("val_") for k in history} - set(NOT_CURVES)
    assert {k.removeprefix("val_") for k in drawn} == names  # every metric, no timings
    assert all(k.endswith("loss") for k in panels["loss"])
    assert set(panels.get("validation counts", [])) <= {f"val_{c}" for c in COUNTS}
    if "val_pr_auc" in history:
        assert "val_pr_auc" in panels["validation scores"] and "pr_auc" not in drawn


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"SLURM_JOB_ID": "17", "SLURM_ARRAY_JOB_ID": "12", "SLURM_ARRAY_TASK_ID": "3"}, "12_3"),
        ({"SLURM_JOB_ID": "17"}, "17"),
        ({}, None),
    ],
)
def test_a_run_names_the_slurm_job_it_ran_in_as_squeue_and_scancel_do(env, expected):
    from losslab.tracking.scheduler import scheduler_tags, slurm_job_id

    assert slurm_job_id(env) == expected
    assert scheduler_tags(env) == ({tag_keys.SLURM_JOB_ID: expected} if expected else {})


class _EndedJob:
    """A submitit job that Slurm ended before it wrote a result."""

    job_id, state = "12_3", "CANCELLED by 0"
    paths = type("Paths", (), {"stderr": "/sweep/.submitit/12_3/12_3_0_log.err"})

    def results(self):
        from submitit.core.utils import UncompletedJobError

        raise UncompletedJobError("has not produced any output (state: CANCELLED by 0)")


def test_a_job_slurm_ended_comes_back_failed_as_lost_and_alone():
    from hydra.core.utils import JobReturn, JobStatus

    from hydra_plugins.losslab_slurm_launcher.slurm_launcher import outcome
    from losslab.search.heartbeat import JobLost

    ret = outcome(_EndedJob(), ["optimizer.lr=0.01"])
    assert ret.status == JobStatus.FAILED and ret.overrides == ["optimizer.lr=0.01"]
    assert isinstance(ret._return_value, JobLost)
    assert str(ret._return_value).startswith("Slurm job 12_3 ended CANCELLED by 0 without")
    done = JobReturn(status=JobStatus.COMPLETED, _return_value=0.5)
    returned = type("Done", (), {"results": lambda self: [done]})()
    assert outcome(returned, []) is done


@pytest.mark.filterwarnings(
    "ignore:Heartbeat of storage", "ignore::optuna.exceptions.ExperimentalWarning"
)
@pytest.mark.parametrize("max_retry", [0, 1])
def test_a_lost_trial_is_queued_again_with_its_params_only_when_retries_are_on(tmp_path, max_retry):
    import optuna

    from losslab.search.heartbeat import retry
    from losslab.search.storage import open_storage

    storage = open_storage(f"sqlite:///{tmp_path}/study.db", 60, None, max_retry)
    study = optuna.create_study(storage=storage)
    lost = study.ask()
    lost.suggest_float("lr", 1e-5, 1e-1, log=True)
    retry(storage, study, lost._trial_id)
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.params for t in waiting] == ([lost.params] if max_retry else [])


def test_the_private_optuna_and_hydra_attributes_the_sweeper_reads_still_exist():
    """The sweeper reads two private attributes (the grid's size, a job's raw return) and the
    report one private function (the Pareto front of chosen trials): a release that renames
    them fails here, not in a user's sweep (pyproject bounds optuna<6)."""
    import optuna
    from hydra.core.utils import JobReturn, JobStatus
    from optuna.study._multi_objective import _get_pareto_front_trials_by_trials

    from hydra_plugins.losslab_optuna_sweeper.samplers import grid_size

    sampler = optuna.samplers.GridSampler({"a": [1, 2], "b": [1, 2, 3]}, seed=0)
    assert grid_size(sampler) == 6
    ret = JobReturn(status=JobStatus.COMPLETED, _return_value=0.5)
    assert ret._return_value == 0.5
    assert ret.return_value == 0.5
    study = optuna.create_study(directions=["minimize", "maximize"])
    for values in ([1, 1], [2, 2], [2, 1], [0, 0]):
        study.add_trial(optuna.create_trial(values=values))
    front = _get_pareto_front_trials_by_trials(study.trials, study.directions)
    assert sorted(t.values for t in front) == [[0, 0], [1, 1], [2, 2]]


@pytest.mark.parametrize("rows", [0, 1, 7, 8, 23])
def test_scores_are_keras_predict_in_its_batches_for_one_input_and_for_several(rows):
    """What ``model.predict`` gives, batch for batch: sizes below, at and past a batch, a
    model of one array and one of named inputs; no scores for no rows."""
    import keras

    from losslab.predict import scores

    rng = np.random.default_rng(rows)
    left, right = keras.Input((3,), name="left"), keras.Input((2,), name="right")
    joined = keras.layers.Concatenate()([left, right])
    two = keras.Model({"left": left, "right": right}, keras.layers.Dense(2)(joined))
    one = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    x = {"left": rng.random((rows, 3), "float32"), "right": rng.random((rows, 2), "float32")}
    for model, inputs in ((one, x["left"]), (two, x)):
        got = scores(model, inputs, batch_size=8)
        assert got.shape == (rows, model.output_shape[-1])
        if rows:  # Keras' predict fails on no rows
            np.testing.assert_allclose(got, model.predict(inputs, batch_size=8, verbose=0))


@pytest.mark.parametrize("task", ["binary", "sparse", "multilabel"])
def test_validation_figures_are_those_of_keras_own_validation(task):
    """In one fit, Keras' own validation (``validation_data``) and the callback give every
    ``val_`` figure alike, each epoch: the loss with its L2 term, and every compiled metric,
    scored in batches smaller than the split, after training with class weights."""
    import keras

    from losslab.metrics import Validation, for_task

    rng = np.random.default_rng(0)
    n_out = {"binary": 1, "multilabel": 3}.get(task, 4)
    x = rng.random((120, 6), "float32")
    classes = rng.integers(0, 2 if task == "binary" else n_out, 120)
    y = {
        "binary": lambda: classes.astype("float32")[:, None],
        "sparse": lambda: classes,
        "multilabel": lambda: (rng.random((120, n_out)) < 0.3).astype("float32"),
    }[task]()
    single = task == "sparse"  # one class of several
    loss = "sparse_categorical_crossentropy" if single else "binary_crossentropy"
    l2 = keras.regularizers.L2(0.01)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, "relu", kernel_regularizer=l2),
            keras.layers.Dense(n_out, "softmax" if single else "sigmoid"),
        ]
    )
    metrics = for_task("multiclass" if single else task, n_out, one_hot=not single)
    model.compile("adam", loss, metrics=metrics)
    keras_own: dict[str, list[float]] = {}

    class KerasOwn(keras.callbacks.Callback):  # before ours, which overwrites the val_ keys
        def on_epoch_end(self, epoch, logs=None):
            for key, value in logs.items():
                keras_own.setdefault(key, []).append(value)

    flat = classes[80:] if task == "binary" else None
    ours = Validation(x[80:], y[80:], flat, 0.1 if task == "binary" else None, batch_size=16)
    history = model.fit(
        x[:80],
        y[:80],
        epochs=2,
        batch_size=16,
        class_weight={0: 1.0, 1: 5.0} if task == "binary" else None,
        validation_data=(x[80:], y[80:]),
        validation_batch_size=16,
        callbacks=[KerasOwn(), ours],
        verbose=0,
    ).history
    val_keys = {k for k in keras_own if k.startswith("val_")}
    assert "val_loss" in val_keys and set(history) == set(keras_own) | (
        {"val_recall_at_fpr"} if task == "binary" else set()
    )
    for key in val_keys:
        np.testing.assert_allclose(history[key], keras_own[key], rtol=1e-5, atol=1e-6, err_msg=key)
