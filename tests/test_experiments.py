"""Each reproduced study, tiny: one multirun per experiment, then the comparison read back
from MLflow has one row per run with that run's values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from losslab.config import to_objects
from tests.helpers import (
    CREDITCARD,
    MNIST_DIR,
    REPO,
    compose,
    needs_creditcard,
    needs_mnist,
    run_cli,
)

# each study is a multirun in a subprocess;
# each test is given a new store (tests/helpers.py: new_store)
pytestmark = pytest.mark.usefixtures("mlflow_db")

FAST = [
    "trainer.epochs=2",
    "trainer.verbose=0",
    "trainer.threads=1",
    "model.units=[16]",
    "tracking.log_model=false",
]


def imdb_npz(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    seqs = np.empty(300, dtype=object)
    labels = rng.integers(0, 2, size=300)
    for i in range(300):  # reviews of one class use more words from their own half
        words = rng.integers(1, 400, size=rng.integers(10, 60))
        seqs[i] = [int(w) // 2 * 2 + int(labels[i]) for w in words]
    path = folder / "imdb.npz"
    np.savez(path, x_train=seqs[:200], y_train=labels[:200], x_test=seqs[200:], y_test=labels[200:])
    return path


EXPERIMENTS = {
    "mnist_9v4": (
        ["equal_weights", "oversampling"],
        [
            f"data.source_dir={MNIST_DIR}",
            "data.max_majority=400",
            "data.n_minority=40",
            "data.val_fraction=0.1",
            "trainer.batch_size=64",
        ],
    ),
    "mnist_9v4_source": (
        ["source_equal_weights", "source_class_weights_100"],
        [f"data.source_dir={MNIST_DIR}", "data.max_majority=400", "trainer.batch_size=64"],
    ),
    "fraud_tutorial": (
        ["baseline", "class_weights"],
        [f"data.path={CREDITCARD}", "data.max_rows=20000", "trainer.batch_size=512"],
    ),
    "imdb_regularization": (["plain", "l2"], ["data.num_words=400"]),
    "multilabel": (["bce", "focal"], ["data.n_samples=1500"]),
}


def run_experiment(tmp_path: Path, name: str, overrides: list[str]):
    return run_cli(tmp_path, "-m", f"+experiment={name}", *FAST, *overrides, timeout=600)


def variants_swept(name: str) -> list[str]:
    """The variants the experiment's own sweep runs."""
    swept = OmegaConf.load(REPO / "conf" / "experiment" / f"{name}.yaml").hydra.sweeper.params
    return str(swept["+variant"]).split(",")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_variant_of_an_experiment_composes_and_validates(tmp_path, name):
    """What each job of the experiment's sweep is given is a valid config; the end-to-end test
    below runs two variants of each."""
    variants = variants_swept(name)
    assert set(EXPERIMENTS[name][0]) <= set(variants)
    for variant in variants:
        conf = to_objects(compose(tmp_path, f"+experiment={name}", f"+variant={variant}"))
        assert conf.task_name == name


NEEDS = {
    "mnist_9v4": needs_mnist,
    "mnist_9v4_source": needs_mnist,
    "fraud_tutorial": needs_creditcard,
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=NEEDS.get(name, ())) for name in EXPERIMENTS]
)
def test_experiment_runs_and_its_comparison_reads_back_every_run(tmp_path, name):
    variants, overrides = EXPERIMENTS[name]
    if name == "imdb_regularization":
        overrides = [*overrides, f"data.path={imdb_npz(tmp_path)}"]
    swept = ["hydra.sweeper.params={}", f"+variant={','.join(variants)}"]
    run_experiment(tmp_path, name, [*overrides, *swept])
    proc = subprocess.run(
        [sys.executable, str(REPO / "pipelines" / "compare.py"), "--experiment", name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "outputs" / "compare" / name
    table = pd.read_csv(out / "comparison.csv")
    assert sorted(table["run"]) == sorted(f"+variant={v}" for v in variants)
    assert all(f"+variant={v}" in proc.stdout for v in variants)  # printed in the terminal

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    for row in table.itertuples(index=False):
        run = client.get_run(row.run_id)
        assert run.data.tags["losslab.overrides"].startswith(row.run)
        assert row.status == run.info.status == "FINISHED"
        for metric in ("test_pr_auc", "test_recall", "test_precision", "test_macro_f1"):
            if metric in table.columns:
                assert getattr(row, metric) == pytest.approx(run.data.metrics[metric])
    if "test_recall" in table.columns:  # binary: recall and precision follow the confusion
        for row in table.itertuples(index=False):
            (tn, fp), (fn, tp) = json.loads(row.confusion)
            assert row.test_recall == pytest.approx(tp / (tp + fn))
            if "test_majority_recall" in table.columns:  # binary data only
                assert row.test_majority_recall == pytest.approx(tn / (tn + fp))
            if tp + fp:
                assert row.test_precision == pytest.approx(tp / (tp + fp))

    parent = client.get_run(table.run_id[0]).data.tags["mlflow.parentRunId"]
    logged = {a.path for a in client.list_artifacts(parent, "comparison")}
    assert {
        "comparison/comparison.html",
        "comparison/comparison.csv",
        "comparison/pr_curves.png",
        "comparison/learning_curves.png",
    } <= logged
    page = (out / "comparison.html").read_text()
    runs_table = page.split("<table class='runs'>")[1].split("</table><figure")[0]
    confusions = 1 + table["confusion_at_0.5"].notna().all()  # at 0.5 too, where it differs
    assert runs_table.count("<tr><th>true") == confusions * len(variants)
    assert page.count("<tr class='best'>") == 1 and page.count("data:image/png") == 3


@pytest.mark.slow
def test_fraud_tutorial_without_a_csv_falls_back_to_synthetic_data(tmp_path):
    proc = run_experiment(
        tmp_path, "fraud_tutorial", ["hydra.sweeper.params={}", "+variant=baseline"]
    )
    said = proc.stdout + proc.stderr
    assert "data.path is not set" in said and "data.fallback=synthetic_fraud" in said
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("fraud_tutorial").experiment_id
    (job,) = [r for r in client.search_runs([exp]) if r.data.tags["losslab.run_type"] == "job"]
    assert job.data.tags["losslab.data"] == "synthetic_fraud"


@pytest.mark.slow
def test_compare_names_a_missing_experiment(tmp_path):
    MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").create_experiment("mnist_9v4")
    proc = subprocess.run(
        [sys.executable, str(REPO / "pipelines" / "compare.py"), "--experiment", "nope"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "experiment='nope' does not exist" in proc.stderr
    assert "'mnist_9v4'" in proc.stderr  # the experiments there are named
