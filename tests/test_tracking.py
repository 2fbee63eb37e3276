"""MLflow records every batch and epoch point, the run's content, and the sweep hierarchy,
against a real SQLite store and a real tracking server."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import keras
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from losslab.tracking.callback import MlflowLogger
from losslab.tracking.run import TrackedRun
from losslab.tracking.writer import MAX_METRICS_PER_BATCH, MetricWriter
from losslab.train import train
from tests.helpers import REPO, compose, new_store, run_cli

# each test records into a new store of its own, copied (tests/helpers.py: new_store)
pytestmark = pytest.mark.usefixtures("mlflow_db")

EPOCHS, STEPS, BATCH = 3, 10, 32


def tiny_fit(callback: keras.callbacks.Callback) -> keras.Model:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS * BATCH, 6)).astype("float32")
    y = (x[:, 0] > 0.5).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        "adam", "binary_crossentropy", metrics=[keras.metrics.AUC(name="pr_auc", curve="PR")]
    )
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=EPOCHS,
        validation_data=(x[:64], y[:64]),
        callbacks=[callback],
        verbose=0,
    )
    return model


@pytest.fixture(params=["sqlite", pytest.param("server", marks=pytest.mark.slow)])
def tracking_uri(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/mlflow.db"
    return request.getfixturevalue("mlflow_server")


def test_every_batch_and_epoch_point_is_stored(tracking_uri):
    with TrackedRun(tracking_uri, "callback-test") as run:
        tiny_fit(MlflowLogger(samples_per_epoch=STEPS * BATCH, run=run))
        client = MlflowClient(tracking_uri)
        # on_train_end waited: everything is stored before the run ends
        for key in ("batch/loss", "batch/pr_auc"):
            history = client.get_metric_history(run.run_id, key)
            assert sorted(m.step for m in history) == list(range(EPOCHS * STEPS))
        for key in (
            "loss",
            "val_loss",
            "pr_auc",
            "val_pr_auc",
            "learning_rate",
            "epoch_time_s",
            "samples_per_second",
        ):
            history = client.get_metric_history(run.run_id, key)
            assert [m.step for m in history] == list(range(EPOCHS)), key
    assert client.get_run(run.run_id).info.status == "FINISHED"


def test_every_n_batches_thins_batch_metrics_only(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with TrackedRun(uri, "thin") as run:
        tiny_fit(MlflowLogger(4, run=run))
    client = MlflowClient(uri)
    steps = [m.step for m in client.get_metric_history(run.run_id, "batch/loss")]
    assert steps == list(range(0, EPOCHS * STEPS, 4))
    assert len(client.get_metric_history(run.run_id, "val_loss")) == EPOCHS


class CountingClient:
    """The real client, with the size of every log_batch request noted."""

    def __init__(self, uri: str) -> None:
        self.client = MlflowClient(uri)
        self.sizes: list[int] = []

    def log_batch(self, run_id, metrics=(), **kwargs):
        self.sizes.append(len(metrics))
        return self.client.log_batch(run_id, metrics=metrics, **kwargs)


def test_writer_sends_at_most_1000_points_per_request(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("w")).info.run_id
    spy = CountingClient(uri)
    writer = MetricWriter(spy, run_id, interval_s=10.0)
    for step in range(2500):
        writer.add(step, {"a": step, "b": -step, "c": 0.5})
    assert writer.close(timeout=120)
    assert sum(spy.sizes) == 7500 and max(spy.sizes) <= MAX_METRICS_PER_BATCH
    assert len(spy.sizes) <= 10
    assert len(client.get_metric_history(run_id, "c")) == 2500


@pytest.mark.slow
def test_run_records_params_artifacts_tags_and_a_loadable_model(tmp_path):
    secret = "postgresql://alice:hunter2@db.example/optuna"
    result = train(
        compose(tmp_path, "trainer.epochs=2", "tracking.log_model=true", f"+tags.storage={secret}")
    )
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model.units"] == "[64, 32]" and params["optimizer.lr"] == "0.001"
    assert params["tags.storage"] == "postgresql://alice:***@db.example/optuna"
    assert run.data.tags["storage"] == "postgresql://alice:***@db.example/optuna"
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    if head:
        assert run.data.tags["mlflow.source.git.commit"] == head
    assert run.data.tags["losslab.data_fingerprint"] == result.dataset.fingerprint()
    assert run.data.metrics["test_pr_auc"] == pytest.approx(result.metrics["test_pr_auc"])
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    arts |= {
        a.path
        for d in ("config", "plots", "evaluation")
        for a in client.list_artifacts(run.info.run_id, d)
    }
    assert {
        "config/config.yaml",
        "config/overrides.yaml",
        "model_summary.txt",
        "evaluation/confusion_matrix.json",
        "plots/confusion_matrix.png",
        "plots/roc_curve.png",
        "plots/pr_curve.png",
        "plots/learning_curves.png",
    } <= arts
    config_text = client.download_artifacts(run.info.run_id, "config/config.yaml", str(tmp_path))
    with open(config_text) as fh:
        assert "hunter2" not in fh.read()
    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert [m.source_run_id for m in models] == [run.info.run_id]
    mlflow.set_tracking_uri(client.tracking_uri)
    try:
        loaded = mlflow.pyfunc.load_model(models[0].model_uri)
    finally:
        mlflow.set_tracking_uri(None)
    x = result.dataset.x_test[:16]
    np.testing.assert_allclose(
        np.asarray(loaded.predict(x)).ravel(), result.model.predict(x, verbose=0).ravel(), rtol=1e-5
    )
    assert loaded.metadata.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 64)


def test_nan_loss_stops_training_and_fails_the_run(tmp_path):
    cfg = compose(
        tmp_path, "loss=custom", "loss._target_=tests.custom_losses.nan_loss", "trainer.epochs=3"
    )
    with pytest.raises(FloatingPointError, match="training loss became nan"):
        train(cfg)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("losslab").experiment_id])
    assert run.info.status == "FAILED"
    assert "FloatingPointError" in run.data.tags["losslab.error"]


@pytest.mark.slow
def test_multirun_is_one_parent_with_a_child_per_job(tmp_path):
    run_cli(tmp_path, "-m", "loss=focal,bce", "trainer.epochs=1", "tracking.log_model=false")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("losslab").experiment_id
    runs = client.search_runs([exp])
    parents = [r for r in runs if r.data.tags.get("losslab.run_type") == "sweep"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == 2 == len(runs) - 1
    overrides = sorted(r.data.tags["losslab.overrides"] for r in children)
    assert overrides[0].startswith("loss=bce") and overrides[1].startswith("loss=focal")
    assert all(r.info.status == "FINISHED" for r in children)
    assert sorted(r.data.tags["losslab.job_num"] for r in children) == ["0", "1"]


@pytest.mark.slow
def test_training_against_a_tracking_server(tmp_path, mlflow_server):
    result = train(
        compose(
            tmp_path,
            "tracking=server",
            f"tracking.uri={mlflow_server}",
            "trainer.epochs=2",
            "tracking.log_model=true",
        )
    )
    client = MlflowClient(mlflow_server)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "val_pr_auc")) == 2
    steps = len(result.dataset.x_train) // 32 + 1
    assert len(client.get_metric_history(run.info.run_id, "batch/loss")) == 2 * steps
    assert "plots" in {a.path for a in client.list_artifacts(run.info.run_id)}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_signal_while_the_run_closes_ends_the_process_once_it_is_closed(
    tmp_path, monkeypatch, signum
):
    """The close is not broken off (the run is ended, its points stored), nor is the signal
    lost: a sweep's worker or a batch of jobs would otherwise go on to the next trial."""
    from losslab.process import Terminated

    uri = new_store(tmp_path)
    close = MetricWriter.close

    def signalled_close(writer, timeout=None):
        os.kill(os.getpid(), signum)
        return close(writer, timeout)

    monkeypatch.setattr(MetricWriter, "close", signalled_close)
    expected = KeyboardInterrupt if signum == signal.SIGINT else Terminated
    with pytest.raises(expected), TrackedRun(uri, "closing") as run:
        run.writer.add(0, {"loss": 0.5})
    stored = MlflowClient(uri).get_run(run.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.data.metrics["loss"] == 0.5


def test_a_signal_a_library_turned_into_its_own_error_still_ends_the_run_killed(tmp_path):
    """psycopg cancels its query on the signal's exception and Optuna's storage reports a
    failed commit: the run was stopped, not broken, and is not counted among failures."""
    from losslab.process import terminations_as_interrupts

    uri = new_store(tmp_path)
    with pytest.raises(RuntimeError), terminations_as_interrupts(), TrackedRun(uri, "t") as run:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
        except KeyboardInterrupt:
            raise RuntimeError("An exception is raised during the commit") from None
    assert MlflowClient(uri).get_run(run.run_id).info.status == "KILLED"
