"""Runs whose comparison can be trusted, in-process on the embedded digits: every remedy
trains, validation can judge, early stopping keeps the objective's best epoch, folds judge on
every minority sample, and the image remedies (CNN, augmentation) run."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from mlflow import MlflowClient

from losslab.config import ConfigError, to_objects
from losslab.data import DataError
from losslab.evaluate import EvaluationError
from losslab.train import train
from tests.helpers import assert_nothing_recorded, compose

# each test records into a new store of its own, copied (tests/helpers.py: new_store)
pytestmark = pytest.mark.usefixtures("mlflow_db")

QUIET = ["trainer.verbose=0", "trainer.threads=1"]


def test_weighted_cross_entropy_learns_through_fit(tmp_path):
    """The labels ``fit`` passes are (B,): the loss once broadcast them to (B, B) and trained
    towards a constant model (test ROC-AUC 0.5)."""
    cfg = compose(
        tmp_path,
        *QUIET,
        "data=digits_9v4",  # separable: only a loss that does not learn scores 0.5
        "loss=weighted_bce",
        "loss.kwargs.pos_weight=9",
        "trainer.epochs=8",
        "tracking=none",
    )
    result = train(cfg)
    assert result.metrics["test_roc_auc"] > 0.95
    assert result.metrics["test_recall_at_fpr"] > 0.5


def test_early_stopping_restores_the_objectives_best_epoch_under_class_weights(tmp_path):
    """With 100:1 class weights the unweighted val_loss is lowest early; the default monitor
    is the objective, and the model handed back is the one of the objective's best epoch."""
    cfg = compose(
        tmp_path,
        *QUIET,
        "imbalance=class_weight",
        "imbalance.ratio=100",
        "objective=val_recall_at_fpr",
        "trainer.epochs=8",
        "trainer.early_stopping.enabled=true",
        "trainer.early_stopping.patience=8",
        "tracking=none",
    )
    assert cfg.trainer.early_stopping.monitor == "val_recall_at_fpr"
    result = train(cfg)
    history = result.history["val_recall_at_fpr"]
    best = int(np.argmax(history))
    assert result.objective == pytest.approx(history[best])
    # the restored weights score on validation what the best epoch scored
    assert result.metrics["val_final_recall_at_fpr"] == pytest.approx(history[best])


def test_folds_judge_on_every_minority_sample_and_log_the_fold_mean_model(tmp_path):
    cfg = compose(tmp_path, *QUIET, "data.folds=2", "imbalance=class_weight", "trainer.epochs=2")
    result = train(cfg)
    m = result.metrics
    assert m["val_at_threshold_tp"] + m["val_at_threshold_fn"] == 20  # all 20 minority 4s
    assert m["val_at_threshold_tn"] + m["val_at_threshold_fp"] == 120
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(result.run_id)
    for k in (0, 1):
        assert len(client.get_metric_history(result.run_id, f"fold_{k}/val_loss")) == 2
    assert len(client.get_metric_history(result.run_id, "fold_mean/val_loss")) == 2
    assert "val_recall_at_fpr" not in run.data.metrics  # no figure named like the objective
    assert run.data.metrics["objective"] == m["val_final_pr_auc"]  # of the delivered rule
    assert run.data.metrics["epochs_run"] == 2
    saved = keras.saving.load_model(tmp_path / "out" / "model.keras", safe_mode=True)
    p = saved.predict(result.dataset.x_test, verbose=0).ravel()
    np.testing.assert_allclose(p, result.evaluation.p_test, atol=1e-6)


def test_cnn_with_augmented_minority_oversampling_trains(tmp_path):
    cfg = compose(
        tmp_path,
        *QUIET,
        "model=cnn",
        "model.filters=[8]",
        "model.units=[16]",
        "imbalance=oversample_augment",
        "trainer.epochs=2",
        "tracking=none",
    )
    result = train(cfg)
    assert result.model.get_layer("conv_0").output.shape[1:3] == (8, 8)
    assert np.isfinite(result.objective)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model=cnn", "data=synthetic_fraud"], "model.kind=cnn needs image data"),
        (["imbalance=class_weight", "imbalance.augment=true"], "augments the oversampled"),
        (["data.folds=2", "data.val_split=tail"], "needs data.val_split=stratified"),
    ],
)
def test_remedies_that_cannot_apply_are_refused_at_configuration(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        to_objects(compose(tmp_path, *overrides))


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (["data.n_minority=15"], DataError, "class 1: 10 in validation, 5 in training"),
        (["data.folds=3"], DataError, "lower data.folds=3"),
        (
            ["data.val_split=tail", "data.val_fraction=0.1"],
            EvaluationError,
            "validation holds 14 minority and 0 majority",
        ),
        (
            ["data.val_split=tail", "data.val_fraction=0.1", "evaluation.threshold=fixed"],
            EvaluationError,
            "objective=val_pr_auc needs validation with both classes",
        ),
    ],
)
def test_validation_that_cannot_judge_is_refused_before_training(
    tmp_path, overrides, error, message
):
    cfg = compose(tmp_path, *QUIET, *overrides)
    with pytest.raises(error, match=message):
        train(cfg)
    assert_nothing_recorded(tmp_path)


def test_compare_in_the_wrong_folder_creates_nothing_and_says_so(tmp_path, monkeypatch, capsys):
    from losslab.compare_cli import main

    folder = tmp_path / "elsewhere"  # beside the store the module's tests are given
    folder.mkdir()
    monkeypatch.chdir(folder)
    assert main(["--experiment", "mnist_9v4"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"compare: no MLflow store at {folder / 'mlflow.db'}: run it in the folder "
        "you trained in, or give --tracking-uri"
    )
    assert list(folder.iterdir()) == []


def test_compare_names_an_unknown_parent_run_in_one_line(tmp_path, monkeypatch, capsys):
    from mlflow import MlflowClient

    from losslab.compare_cli import main

    monkeypatch.chdir(tmp_path)
    MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").create_experiment("e")
    capsys.readouterr()  # MLflow's lines while it made the store
    run_id = "0123456789abcdef0123456789abcdef"
    assert main(["--parent-run", run_id]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"compare: parent_run={run_id}: no such run")
    assert not (tmp_path / "outputs").exists()
