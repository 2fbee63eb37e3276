"""pipelines/sweep_and_promote.py end to end on a real SQLite store and model registry."""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from tests.helpers import REPO

# a sweep, a retrain and the registry through subprocesses;
# each test is given a new store (tests/helpers.py: new_store)
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("mlflow_db")]

COMMON = [
    "debug=default",
    "trainer.epochs=2",
    "trainer.threads=1",
    "hydra.sweeper.n_trials=2",
    "objective=val_loss",
    "direction=minimize",
    "hydra/sweeper/pruner=none",
    "imbalance.ratio=1.0",
]


def pipeline(tmp_path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(REPO / "pipelines" / "sweep_and_promote.py"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_sweep_retrain_and_promote_only_a_better_model(tmp_path):
    out = pipeline(tmp_path, "--study-name", "good", *COMMON, "optimizer.lr=0.01")
    assert "promoted losslab version 1 as @champion" in out
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    champion = client.get_model_version_by_alias("losslab", "champion")
    run = client.get_run(champion.run_id)
    assert run.data.tags["losslab.run_type"] == "retrain"
    assert run.data.tags["losslab.promotion"] == "losslab@champion"
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["optuna.study_name"] == "good"
    best = {k[len("best.") :]: v for k, v in parent.data.tags.items() if k.startswith("best.")}
    assert float(run.data.params["model.dropout"]) == float(best["model.dropout"])

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        model = mlflow.pyfunc.load_model("models:/losslab@champion")
        x = np.zeros((3, 64), dtype="float32")  # digits: 8 x 8 pixels
        assert np.asarray(model.predict(x)).shape[0] == 3
    finally:
        mlflow.set_tracking_uri(None)

    # a model that cannot learn (lr 1e-9) has a worse val_loss: registered never, alias kept
    out = pipeline(tmp_path, "--study-name", "hopeless", *COMMON, "optimizer.lr=1e-9")
    assert "does not beat it: kept" in out
    assert client.get_model_version_by_alias("losslab", "champion").version == champion.version
    assert len(client.search_model_versions("name='losslab'")) == 1
    rejected = client.search_runs([run.info.experiment_id], "tags.`losslab.promotion` = 'rejected'")
    assert len(rejected) == 1 and rejected[0].data.params["optimizer.lr"] == "1e-09"


def mlflow_run(tmp_path, *args: str) -> None:
    """``mlflow run`` on this project, as the README shows it, into a store under ``tmp_path``."""
    overrides = f"debug=default trainer.epochs=1 paths.log_dir={tmp_path}/outputs"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "run",
            str(REPO),
            "--env-manager",
            "local",
            "-P",
            f"overrides={overrides}",
            *args,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mlflow_run_records_into_the_same_experiment_as_train_py(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    mlflow_run(tmp_path)  # no experiment named: MLflow puts its run in "Default"
    (launcher,) = client.search_runs(["0"])
    losslab = client.get_experiment_by_name("losslab").experiment_id
    (run,) = client.search_runs([losslab])
    assert launcher.data.tags["losslab.recorded_in"] == run.info.run_id
    assert run.data.tags["mlflow.project.entryPoint"] == "main"
    assert run.info.status == "FINISHED" and "test_pr_auc" in run.data.metrics
    assert not launcher.data.metrics  # everything went to the losslab run

    mlflow_run(tmp_path, "--experiment-name", "chosen")  # named: recorded into MLflow's run
    chosen = client.get_experiment_by_name("chosen").experiment_id
    (named,) = client.search_runs([chosen])
    assert "test_pr_auc" in named.data.metrics and "losslab.recorded_in" not in named.data.tags
    assert len(client.search_runs([losslab])) == 1
