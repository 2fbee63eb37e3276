"""The pipeline on each Keras 3 backend: ``KERAS_BACKEND=jax|torch python train.py`` trains,
records and logs a model that serves the same predictions; what a backend cannot do is
refused before any data is loaded."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from losslab.config import ImbalanceConfig, ImbalanceStrategy
from losslab.imbalance import augmenter, oversampled
from losslab.models import load as load_keras_model
from tests.helpers import assert_nothing_recorded, run_cli

# each test records into a new store of its own, copied (tests/helpers.py: new_store)
pytestmark = pytest.mark.usefixtures("mlflow_db")

SHAPE = (8, 8, 1)


def test_augmentation_inside_tf_data_moves_the_minority_images():
    x = np.zeros((40, 64), dtype="float32")
    x[:, 27:29] = 1.0  # a bar in the middle of each 8 x 8 image
    y = np.r_[np.ones(10), np.zeros(30)].astype("float32")
    cfg = ImbalanceConfig(ImbalanceStrategy.oversample, augment=True, shift=0.2, rotation=0.2)
    stream, _ = oversampled(x, y, 0.5, 20, seed=0, augment_minority=augmenter(cfg, SHAPE, 0))
    xb, yb = next(iter(stream))
    xb, yb = np.asarray(xb), np.asarray(yb).ravel()
    minority, majority = xb[yb == 1], xb[yb == 0]
    assert minority.shape == (10, 64) and np.all(majority == x[0])
    moved = [not np.allclose(row, x[0], atol=1e-3) for row in minority]
    assert sum(moved) >= 8  # shifted, rotated or zoomed: almost never left in place
    assert minority.min() >= -1e-6 and minority.max() <= 1 + 1e-6  # borders filled with 0


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_pipeline_records_and_serves_on_each_backend(tmp_path, backend, monkeypatch):
    pytest.importorskip(backend)
    run_cli(
        tmp_path,
        "trainer.epochs=2",
        "model=cnn",
        "imbalance=oversample_augment",
        "trainer.threads=1" if backend == "torch" else "trainer.threads=0",
        f"hydra.run.dir={tmp_path}/out",
        env={"KERAS_BACKEND": backend},
    )
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "batch/loss")]
    assert steps == list(range(len(steps))) and len(steps) % 2 == 0  # two epochs, every batch
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [0, 1]
    (logged,) = client.search_logged_models([run.info.experiment_id])

    saved = load_keras_model(str(tmp_path / "out" / "model.keras"), compile=False)
    x = np.random.default_rng(0).uniform(0, 16, size=(7, 64)).astype("float32")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_tracking_uri(None)
    served = mlflow.pyfunc.load_model(logged.model_uri)
    np.testing.assert_allclose(
        np.asarray(served.predict(x)).ravel(), saved.predict(x, verbose=0).ravel(), atol=1e-5
    )


@pytest.mark.slow
def test_threads_under_jax_are_refused_before_any_data(tmp_path):
    pytest.importorskip("jax")
    proc = run_cli(tmp_path, "trainer.threads=2", env={"KERAS_BACKEND": "jax"}, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(
        "error: trainer.threads=2 cannot be applied under KERAS_BACKEND=jax"
    )
    assert "Traceback" not in proc.stderr
    assert_nothing_recorded(tmp_path)
