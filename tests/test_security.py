"""Secrets stay out of what MLflow records, and saved models load in Keras' safe mode."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from mlflow import MlflowClient

from losslab.tracking.model import load_keras_model
from losslab.tracking.redact import redact_text, redact_tree
from losslab.train import train
from tests.helpers import compose

TOKEN = "ghp_s3cr3tT0kenValue42"


def test_secret_shapes_are_masked():
    assert redact_text("postgresql+psycopg://bob:pa55@db:5432/x") == (
        "postgresql+psycopg://bob:***@db:5432/x"
    )
    assert redact_text("http://h/api?token=abc&x=1") == "http://h/api?token=***&x=1"
    tree = redact_tree({"db": {"password": "hunter2", "user": "bob"}, "api_key": "k"})
    assert tree == {"db": {"password": "***", "user": "bob"}, "api_key": "***"}


def test_environment_secrets_are_masked_in_params_tags_and_config(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLAB_TEST_API_TOKEN", TOKEN)
    cfg = compose(tmp_path, "trainer.epochs=1", "+tags.note=from-${oc.env:LOSSLAB_TEST_API_TOKEN}")
    result = train(cfg)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(result.run_id)
    assert run.data.params["tags.note"] == "from-***"
    assert run.data.tags["note"] == "from-***"
    recorded = [*run.data.params.values(), *run.data.tags.values()]
    folder = client.download_artifacts(result.run_id, "config", str(tmp_path / "artifacts"))
    recorded += [p.read_text() for p in sorted(tmp_path.glob("artifacts/config/**/*.yaml"))]
    assert folder and len(recorded) > 10
    assert not [text for text in recorded if TOKEN in text]


def test_models_load_in_safe_mode(tmp_path):
    inputs = keras.Input((3,))
    outputs = keras.layers.Lambda(lambda t: t * 2.0)(inputs)  # code Keras would have to run
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match="safe_mode"):
        load_keras_model(str(path))

    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    plain.save(tmp_path / "plain.keras")
    x = np.ones((2, 3), np.float32)
    loaded = load_keras_model(str(tmp_path / "plain.keras"))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), plain.predict(x, verbose=0))


def test_environment_reads_survive_a_thread_deleting_variables():
    """MLflow's telemetry thread deletes a variable while the run masks secrets."""
    import os
    import threading

    from losslab.tracking.redact import secret_env_values

    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            for i in range(50):
                os.environ[f"LOSSLAB_CHURN_{i}"] = "x"
            for i in range(50):
                os.environ.pop(f"LOSSLAB_CHURN_{i}", None)

    os.environ["LOSSLAB_TEST_SECRET_TOKEN"] = TOKEN
    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(3000):
            assert TOKEN in secret_env_values()
    finally:
        stop.set()
        thread.join()
        os.environ.pop("LOSSLAB_TEST_SECRET_TOKEN")
