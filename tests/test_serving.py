"""The promoted champion served by ``mlflow models serve`` answers over REST with the same
probabilities as the model in process, and its signature turns a wrongly shaped input away."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests

from losslab.models import load as load_keras_model
from tests.helpers import REPO, free_port

# a sweep, a retrain and a model server through subprocesses;
# each test is given a new store (tests/helpers.py: new_store)
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("mlflow_db")]

CHAMPION = "models:/losslab@champion"


@contextlib.contextmanager
def model_server(tmp_path: Path, uri: str, model: str = CHAMPION) -> Iterator[str]:
    """``mlflow models serve`` of ``model`` (the champion) on 127.0.0.1, as the README starts it."""
    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - the server writes it
    proc = subprocess.Popen(
        ["mlflow", "models", "serve", "-m", model, "--env-manager", "local"]
        + ["-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def promote(tmp_path: Path) -> None:
    """A champion trained with losslab's own weighted loss (a custom Keras loss)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "pipelines" / "sweep_and_promote.py")]
        + ["--study-name", "served", "debug=default", "trainer.epochs=2", "trainer.threads=1"]
        + ["hydra.sweeper.n_trials=1", "objective=val_loss", "direction=minimize"]
        + ["loss=weighted_bce", "imbalance=class_weight"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "promoted losslab version 1 as @champion" in proc.stdout, proc.stdout + proc.stderr


def trained_model(tmp_path: Path):
    """The retrained job's own ``model.keras`` (compiled with the custom loss)."""
    saved = max(tmp_path.glob("outputs/**/model.keras"), key=lambda p: p.stat().st_mtime)
    return load_keras_model(str(saved))


def test_the_champion_answers_over_rest_as_in_process(tmp_path, monkeypatch):
    promote(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    x = np.random.default_rng(0).uniform(0, 16, size=(5, 64)).astype("float32")
    with model_server(tmp_path, uri) as url:
        answer = requests.post(f"{url}/invocations", json={"inputs": x.tolist()}, timeout=30)
        wrong = requests.post(f"{url}/invocations", json={"inputs": x[:, :3].tolist()}, timeout=30)
    assert answer.status_code == 200, answer.text
    served = np.asarray(answer.json()["predictions"]).ravel()
    np.testing.assert_allclose(
        served, trained_model(tmp_path).predict(x, verbose=0).ravel(), atol=1e-6
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(None)
    in_process = np.asarray(mlflow.pyfunc.load_model(CHAMPION).predict(x)).ravel()
    np.testing.assert_allclose(served, in_process, atol=1e-6)
    assert wrong.status_code == 400
    assert "does not match expected shape (-1, 64)" in wrong.json()["message"]
