"""The public callback in a plain Keras script (no Hydra): ``from losslab.keras import
MlflowLogger``, inside and outside an active MLflow run, on each Keras backend.

In-process tests use this suite's backend (TensorFlow); each backend also runs the same
script in its own process, since Keras picks its backend once per process.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from losslab.keras import MlflowLogger

# each test records into a new store of its own, copied (tests/helpers.py: new_store)
pytestmark = pytest.mark.usefixtures("mlflow_db")

N, BATCH, EPOCHS, N_VAL = 200, 16, 3, 120
STEPS = math.ceil(N / BATCH)
EPOCH_KEYS = ("loss", "pr_auc", "val_loss", "val_pr_auc", "learning_rate", "epoch_time_s")
EXPERIMENT = "plain-keras"


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] + 0.3 * rng.normal(size=n) > 1.0).astype("float32")


def fit(logger: keras.callbacks.Callback, *extra: keras.callbacks.Callback) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile("adam", "binary_crossentropy", metrics=[keras.metrics.AUC(name="pr_auc")])
    model.fit(
        *data(N, 0),
        batch_size=BATCH,
        epochs=EPOCHS,
        validation_data=data(N_VAL, 1),
        callbacks=[logger, *extra],
        verbose=0,
    )
    return model


@pytest.fixture
def store(tmp_path, monkeypatch) -> MlflowClient:
    """MLflow's current store and experiment, set as a user sets them (environment)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(None)
    return MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")


def runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])


def assert_every_point(client: MlflowClient, run_id: str, epochs: int = EPOCHS) -> None:
    for key in ("batch/loss", "batch/pr_auc"):
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert sorted(steps) == list(range(epochs * STEPS)), key
    for key in EPOCH_KEYS:
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert sorted(steps) == list(range(epochs)), key


def test_outside_a_run_it_starts_one_and_ends_it_finished(store):
    logger = MlflowLogger(batch_size=BATCH, run_name="plain")
    fit(logger)
    (run,) = runs(store)
    assert run.info.run_id == logger.run_id
    assert run.info.status == "FINISHED" and run.info.run_name == "plain"
    assert_every_point(store, run.info.run_id)
    speed = store.get_metric_history(run.info.run_id, "samples_per_second")
    assert len(speed) == EPOCHS and all(m.value > 0 for m in speed)
    assert run.data.tags["mlflow.source.name"]  # what MLflow's own start_run records
    assert mlflow.active_run() is None


def test_inside_an_active_run_it_records_there_and_leaves_the_status_to_it(store):
    logger = MlflowLogger()
    with mlflow.start_run(run_name="mine") as active:
        fit(logger)
        assert store.get_run(active.info.run_id).info.status == "RUNNING"
        assert_every_point(store, active.info.run_id)
    (run,) = runs(store)
    assert run.info.run_id == active.info.run_id == logger.run_id
    assert run.info.status == "FINISHED"
    assert not store.get_metric_history(run.info.run_id, "samples_per_second")  # no batch size


class FailAt(keras.callbacks.Callback):
    def __init__(self, epoch: int, error: BaseException) -> None:
        super().__init__()
        self.epoch, self.error = epoch, error

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch == self.epoch:
            raise self.error


def test_a_fit_that_raised_is_ended_failed_when_the_next_one_starts(store):
    logger = MlflowLogger()
    with pytest.raises(RuntimeError, match="boom"):
        fit(logger, FailAt(1, RuntimeError("boom")))
    fit(logger)
    failed, finished = runs(store)
    assert (failed.info.status, finished.info.status) == ("FAILED", "FINISHED")
    assert "fit did not finish" in failed.data.tags["losslab.error"]
    assert_every_point(store, failed.info.run_id, epochs=2)  # what was queued was kept


def test_at_train_end_it_logs_model_plots_threshold_and_config(store):
    x_val, y_val = data(N_VAL, 1)
    logger = MlflowLogger(
        log_model=True,
        plots=True,
        log_model_config=True,
        validation_data=(x_val, y_val),
        max_fpr=0.05,
    )
    model = fit(logger)
    run_id = logger.run_id
    listed = {
        a.path
        for folder in ("", "plots", "model", "evaluation")
        for a in store.list_artifacts(run_id, folder or None)
    }
    assert {
        "plots/learning_curves.png",
        "plots/confusion_matrix.png",
        "plots/roc_curve.png",
        "plots/pr_curve.png",
        "model/config.json",
        "model/summary.txt",
        "evaluation/confusion_matrix.json",
    } <= listed
    confusion = json.loads(
        mlflow.artifacts.load_text(f"runs:/{run_id}/evaluation/confusion_matrix.json")
    )
    (tn, fp), (fn, tp) = confusion["at_threshold"]
    assert fp / (fp + tn) <= 0.05 and tp + fn == int(y_val.sum())
    metrics = store.get_run(run_id).data.metrics
    assert metrics["threshold"] == pytest.approx(confusion["threshold"])
    assert metrics["val_at_threshold_tp"] == tp
    (logged,) = store.search_logged_models([store.get_run(run_id).info.experiment_id])
    loaded = mlflow.pyfunc.load_model(logged.model_uri)
    expected = model.predict(x_val, verbose=0)
    assert np.allclose(
        np.asarray(loaded.predict(x_val)).reshape(expected.shape), expected, atol=1e-6
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"log_model": True}, "needs an input_example or validation_data"),
        ({"every_n_batches": 0}, "every_n_batches=0"),
        ({"plots": True, "validation_data": (np.zeros((2, 6)),)}, "a pair"),
        ({"plots": True, "max_fpr": 1.5}, "max_fpr=1.5"),
    ],
)
def test_options_it_cannot_honour_are_refused_before_training(store, options, message):
    with pytest.raises(ValueError, match=message):
        MlflowLogger(**options)


def test_a_resumed_fit_goes_on_at_its_batch_and_the_callback_can_be_copied(store):
    logger = copy.deepcopy(MlflowLogger())  # as Keras Tuner copies callbacks for each trial
    with mlflow.start_run() as active:
        model = fit(logger)
        x, y = data(N, 0)
        model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=EPOCHS + 2,
            initial_epoch=EPOCHS,
            callbacks=[logger],
            verbose=0,
        )
    steps = [m.step for m in store.get_metric_history(active.info.run_id, "batch/loss")]
    assert sorted(steps) == list(range((EPOCHS + 2) * STEPS))
    epochs = [m.step for m in store.get_metric_history(active.info.run_id, "loss")]
    assert sorted(epochs) == list(range(EPOCHS + 2))


def test_under_mlflow_run_it_records_into_the_run_mlflow_run_made(store, monkeypatch):
    experiment = store.create_experiment(EXPERIMENT)
    made = store.create_run(experiment).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", made)
    fit(MlflowLogger())
    (run,) = runs(store)
    assert run.info.run_id == made and run.info.status == "RUNNING"  # mlflow run ends it
    assert_every_point(store, made)


def test_two_loggers_in_one_fit_each_keep_their_own_run(store):
    first, second = MlflowLogger(run_name="a"), MlflowLogger(run_name="b", prefix="b/")
    fit(first, second)
    assert {r.info.run_name: r.info.status for r in runs(store)} == {
        "a": "FINISHED",
        "b": "FINISHED",
    }
    assert_every_point(store, first.run_id)
    steps = [m.step for m in store.get_metric_history(second.run_id, "b/batch/loss")]
    assert sorted(steps) == list(range(EPOCHS * STEPS))


SCRIPT = """
import sys
import keras, mlflow, numpy as np
from losslab.keras import MlflowLogger

modes = sys.argv[1]
rng = np.random.default_rng(0)
x = rng.normal(size=({n}, 6)).astype("float32")
y = (x[:, 0] > 0.8).astype("float32")
model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile("adam", "binary_crossentropy", metrics=[keras.metrics.AUC(name="pr_auc")])

class Stop(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if mode.endswith("raises") and epoch == 1:
            raise RuntimeError("boom")
        if mode == "interrupted" and epoch == 1:
            raise KeyboardInterrupt

logger = MlflowLogger(log_model=True, plots=True, validation_data=(x[:120], y[:120]))
fit = lambda: model.fit(x, y, batch_size={batch}, epochs={epochs}, validation_split=0.4,
                        callbacks=[logger, Stop()], verbose=0)
for mode in modes.split(","):
    if mode.startswith("active"):
        with mlflow.start_run():
            fit()
    else:
        fit()
"""


def run_script(tmp_path: Path, backend: str, mode: str) -> subprocess.CompletedProcess:
    script = tmp_path / "plain_keras.py"
    script.write_text(textwrap.dedent(SCRIPT.format(n=N, batch=BATCH, epochs=EPOCHS)))
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "MLFLOW_EXPERIMENT_NAME": EXPERIMENT,
    }
    return subprocess.run(
        [sys.executable, str(script), mode],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


BACKENDS = ["tensorflow", "jax", "torch"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_records_every_point_and_the_model(tmp_path, backend):
    """A script's fit with a run of the callback's own, then one in ``mlflow.start_run()``."""
    pytest.importorskip(backend)
    proc = run_script(tmp_path, backend, "own,active")
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    own, active = runs(client)
    logged = client.search_logged_models([own.info.experiment_id])
    assert sorted(m.source_run_id for m in logged) == sorted([own.info.run_id, active.info.run_id])
    train_steps = math.ceil(N * 0.6 / BATCH)
    for run in (own, active):
        assert run.info.status == "FINISHED"
        batch = client.get_metric_history(run.info.run_id, "batch/loss")
        assert sorted(m.step for m in batch) == list(range(EPOCHS * train_steps))
        for key in EPOCH_KEYS:
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [0, 1, 2]
        plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert "plots/roc_curve.png" in plots
    assert "1/1" not in proc.stdout  # no progress bar while the model is checked


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "status"),
    [("raises", "FAILED"), ("interrupted", "KILLED"), ("active-raises", "FAILED")],
)
def test_a_script_that_dies_in_fit_leaves_no_run_running(tmp_path, mode, status):
    proc = run_script(tmp_path, "tensorflow", mode)
    assert proc.returncode != 0
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = runs(client)
    assert run.info.status == status
    if mode == "raises":
        assert run.data.tags["losslab.error"] == "RuntimeError: boom"
    train_steps = math.ceil(N * 0.6 / BATCH)
    batch = client.get_metric_history(run.info.run_id, "batch/loss")
    assert len(batch) == 2 * train_steps  # the two epochs before it died


def readme_example() -> str:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = readme.split("```python\n")[1:]
    return next(b.split("```")[0] for b in blocks if "load_digits" in b and "MlflowLogger" in b)


@pytest.mark.slow
def test_the_readme_example_runs_as_written(tmp_path):
    (tmp_path / "example.py").write_text(readme_example())
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    proc = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("my-keras-script")
    (run,) = client.search_runs([experiment.experiment_id])
    assert (run.info.run_name, run.info.status) == ("digits-3", "FINISHED")
    assert run.data.params == {"optimizer": "adam", "batch_size": "32"}
    batches = client.get_metric_history(run.info.run_id, "batch/loss")
    assert len(batches) == math.ceil(1400 / 32) * 20
    assert len(client.get_metric_history(run.info.run_id, "val_pr_auc")) == 20
    assert client.search_logged_models([experiment.experiment_id])
