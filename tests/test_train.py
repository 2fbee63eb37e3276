"""Training end to end: in-process on composed configs, and ``python train.py`` as users run it."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from losslab.train import train
from tests.helpers import (
    CREDITCARD,
    FASHION_DIR,
    MNIST_DIR,
    compose,
    needs_creditcard,
    needs_fashion,
    needs_mnist,
    run_cli,
)

# each test records into a new store of its own, copied (tests/helpers.py: new_store)
pytestmark = pytest.mark.usefixtures("mlflow_db")


@pytest.mark.slow
def test_default_run_end_to_end_cli(tmp_path):
    """With MLflow's default environment: its telemetry thread changes os.environ meanwhile."""
    proc = run_cli(tmp_path, "trainer.epochs=3", default_env=True)
    assert "Test confusion matrix (digits_9v3" in proc.stdout
    assert "objective val_pr_auc" in proc.stdout
    assert (tmp_path / "mlflow.db").is_file()
    # a terminal a person reads: no TensorFlow start-up block, short lines, where things are
    lines = (proc.stdout + proc.stderr).splitlines()
    noise = ("absl::InitializeLog", "oneDNN", "cuda", "cuInit", "cpu_feature_guard")
    assert not [line for line in lines if any(n in line for n in noise)]
    assert not [line for line in lines if len(line) > 160]
    assert "\x1b[" not in proc.stdout + proc.stderr  # no progress bar while the model is logged
    assert [line for line in lines if line.startswith("epoch 3/3 | loss ")]
    (output,) = [line for line in lines if line.startswith("Output: ")]
    assert (Path(output.split()[1]) / "model.keras").is_file()
    # the logged model's environment: the versions that trained it, given, not inferred
    store = f"sqlite:///{tmp_path}/mlflow.db"
    exp = MlflowClient(store).get_experiment_by_name("losslab").experiment_id
    (logged,) = MlflowClient(store).search_logged_models([exp])
    model = mlflow.artifacts.download_artifacts(
        f"{logged.artifact_location}/requirements.txt", dst_path=str(tmp_path / "logged")
    )
    pins = set(Path(model).read_text().split())
    for package in ("mlflow", "tensorflow", "keras", "numpy"):
        assert f"{package}=={version(package)}" in pins


@pytest.mark.slow
def test_multirun_runs_one_job_per_loss(tmp_path):
    proc = run_cli(tmp_path, "-m", "loss=focal,bce", "trainer.epochs=2", "tracking=none")
    assert proc.stdout.count("Test confusion matrix") == 2
    assert "#1 : loss=bce" in proc.stdout or "#1 : loss=bce" in proc.stderr


def test_class_weights_lift_minority_recall(tmp_path, monkeypatch):
    """The reference study in small: unweighted, the minority is ignored at threshold 0.5.
    Each fit traces its training step once (Keras calls ``train_step`` only while tracing)."""
    traced = []
    step = keras.Model.train_step
    monkeypatch.setattr(keras.Model, "train_step", lambda m, d: traced.append(m) or step(m, d))
    common = ("data.n_minority=20", "trainer.epochs=4", "trainer.batch_size=64", "tracking=none")
    plain = train(compose(tmp_path, *common))
    weighted = train(compose(tmp_path, *common, "imbalance=class_weight", "imbalance.ratio=20"))
    assert traced == [plain.model, weighted.model]
    assert plain.metrics["test_at_0.5_recall"] < 0.3
    assert weighted.metrics["test_at_0.5_recall"] > 0.8
    assert set(plain.metrics) >= {
        "test_precision",
        "test_recall",
        "test_f1",
        "test_roc_auc",
        "test_pr_auc",
        "test_at_0.5_recall",
        "threshold",
    }


def test_saved_model_with_custom_loss_loads_back(tmp_path):
    cfg = compose(
        tmp_path,
        "loss=custom",
        "loss._target_=tests.custom_losses.AsymmetricLoss",
        "+loss.kwargs.alpha=3.0",
        "tracking=none",
        "trainer.epochs=2",
    )
    result = train(cfg)
    loaded = keras.saving.load_model(tmp_path / "out" / "model.keras")
    assert type(loaded.loss).__name__ == "AsymmetricLoss" and loaded.loss.alpha == 3.0
    x = result.dataset.x_test[:32]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), result.model.predict(x, verbose=0))


def test_oversample_focal_initial_bias_and_recall_threshold_run(tmp_path):
    result = train(
        compose(
            tmp_path,
            "data=digits_9v4",  # two epochs reach precision 0.8 on the easy pair
            "imbalance=oversample",
            "imbalance.initial_bias=true",
            "loss=focal",
            "evaluation.threshold=recall_at_precision",
            "evaluation.min_precision=0.8",
            "trainer.epochs=2",
            "tracking=none",
        )
    )
    m = result.metrics
    assert 0.0 < m["threshold"] < 1.0
    # the rule's promise on the data it was chosen on, and a threshold that flags something
    assert m["val_at_threshold_precision"] >= 0.8
    assert m["val_at_threshold_tp"] >= 1
    assert m["test_tp"] + m["test_fp"] >= 1


@needs_fashion
def test_multiclass_and_multilabel_tasks_train(tmp_path):
    mc = train(
        compose(
            tmp_path,
            "data=fashion_mnist",
            f"data.source_dir={FASHION_DIR}",
            "data.max_train=1500",
            "loss=categorical_ce",
            "trainer.epochs=1",
            "tracking=none",
            "objective=val_macro_f1",
        )
    )
    assert mc.evaluation.confusion.shape == (10, 10)
    assert "test_recall_9" in mc.metrics and "val_recall_0" in mc.history
    ml = train(
        compose(
            tmp_path,
            "data=multilabel",
            "data.n_samples=2000",
            "loss=weighted_bce",
            "loss.kwargs.pos_weight=5.0",
            "trainer.epochs=1",
            "tracking=none",
            "imbalance.initial_bias=true",
            "objective=test_macro_f1",
        )
    )
    n_labels = ml.dataset.y_test.shape[1]
    assert ml.evaluation.task == "multilabel" and n_labels == 12
    assert {f"test_recall_{k}" for k in range(n_labels)} <= set(ml.metrics)
    assert ml.objective == ml.metrics["test_macro_f1"]
    assert 0.05 <= ml.metrics["threshold"] <= 0.95
    # the summed per-label matrix counts every (sample, label) pair of the test split once
    assert ml.evaluation.confusion.sum() == ml.dataset.y_test.size


def test_unknown_objective_is_refused_before_training(tmp_path):
    from losslab.config import ConfigError

    with pytest.raises(ConfigError, match="objective='val_auc' is not recorded"):
        train(compose(tmp_path, "objective=val_auc", "tracking=none"))


@pytest.mark.slow
@needs_mnist
@needs_creditcard
def test_real_mnist_and_creditcard_files_run_from_the_cli(tmp_path):
    run_cli(
        tmp_path,
        "data=mnist_9v4",
        f"data.source_dir={MNIST_DIR}",
        "data.max_majority=1500",
        "trainer.epochs=1",
        "tracking=none",
    )
    proc = run_cli(
        tmp_path,
        "data=creditcard",
        f"data.path={CREDITCARD}",
        "data.max_rows=30000",
        "model=mlp_fraud",
        "trainer.epochs=1",
        "trainer.batch_size=2048",
        "tracking=none",
    )
    assert "legit" in proc.stdout and "fraud" in proc.stdout
