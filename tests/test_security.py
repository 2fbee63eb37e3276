"""Secrets stay out of what MLflow records, and saved models load in Keras' safe mode."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient

from losslab.models import load as load_keras_model
from losslab.tracking.redact import redact_text, redact_tree
from losslab.train import train
from tests.helpers import MlflowServer, compose, run_cli

# each test records into a new store of its own, copied (tests/helpers.py: new_store)
pytestmark = pytest.mark.usefixtures("mlflow_db")

TOKEN = "ghp_s3cr3tT0kenValue42"


def test_secret_shapes_are_masked():
    assert redact_text("postgresql+psycopg://bob:pa55@db:5432/x") == (
        "postgresql+psycopg://bob:***@db:5432/x"
    )
    assert redact_text("http://h/api?token=abc&x=1") == "http://h/api?token=***&x=1"
    # Hydra escapes the colons of an override, and a printed list of overrides doubles that
    assert redact_text(r"uri=http://bob\:pa55@h\:5000") == r"uri=http://bob\:***@h\:5000"
    assert redact_text(r"['uri=http://bob\\:pa55@h']") == r"['uri=http://bob\\:***@h']"
    tree = redact_tree({"db": {"password": "hunter2", "user": "bob"}, "api_key": "k"})
    assert tree == {"db": {"password": "***", "user": "bob"}, "api_key": "***"}


@settings(max_examples=200, deadline=None)
@given(
    before=st.text(alphabet=st.sampled_from("aZ9_.-+:/= @x'\""), max_size=300),
    form=st.sampled_from(
        [
            "postgresql+psycopg://bob:{s}@db/x",
            "https://u:{s}@host:5000",
            "+tags.api_token={s}",
            "db.password={s}",
            "http://h/api?token={s}&x=1",
        ]
    ),
)
def test_a_secret_is_masked_whatever_text_comes_before_it(before, form):
    """Wherever a URL or key=value starts, after any run of characters (the patterns start at
    a run's beginning or look back a bounded way, to stay linear in the text's length)."""
    secret = "Zq7secretW9"
    text = f"{before} {form.format(s=secret)}"
    assert secret not in redact_text(text)


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


def test_a_data_file_that_asks_pickle_to_run_code_is_refused(tmp_path):
    """Keras' imdb.npz needs object arrays; a crafted one must not run anything when read."""
    import io
    import os
    import pickle
    import zipfile

    from losslab.config.data import ImdbConfig
    from losslab.data import DataError, load

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    member = io.BytesIO()
    header = {"descr": "|O", "fortran_order": False, "shape": (1,)}
    np.lib.format.write_array_header_1_0(member, header)
    pickle.dump(Payload(), member, protocol=3)
    path = tmp_path / "imdb.npz"
    with zipfile.ZipFile(path, "w") as z:
        for name in ("x_train", "y_train", "x_test", "y_test"):
            z.writestr(f"{name}.npy", member.getvalue())
    with pytest.raises(DataError, match=r"x_\w+.npy refused: posix.system is not allowed"):
        load(ImdbConfig(path=str(path)), seed=0)
    assert not marker.exists()


PASSWORD = "s3cretPassw0rd"
API_TOKEN = "tok_9f8e7d6c5b4a"


def files_holding(folder: Path, secret: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.mark.slow
def test_no_secret_in_anything_a_run_or_sweep_writes_or_prints(tmp_path):
    """A password in the tracking URI and a token in an override: nowhere in clear, not in
    the store (run names, params, tags, artifacts), the Hydra folders, or the terminal, where
    Hydra itself prints the overrides of a job that failed."""
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    server = MlflowServer(server_dir)
    url = server.start().replace("http://", f"http://alice:{PASSWORD}@")
    work = tmp_path / "work"
    work.mkdir()
    try:
        common = [
            "tracking=server",
            f"tracking.uri={url}",
            f"+tags.api_token={API_TOKEN}",
            "tracking.log_model=false",
        ]
        single = run_cli(work, *common)
        # categorical_ce cannot train binary data: its job fails, and so does the sweep
        sweep = run_cli(work, "-m", "loss=bce,categorical_ce", *common, check=False)
    finally:
        server.stop()
    for secret in (PASSWORD, API_TOKEN):
        for proc in (single, sweep):
            assert secret not in proc.stdout + proc.stderr
        assert files_holding(work, secret) == []
        assert files_holding(server_dir, secret) == []
    assert "MLflow run: http://alice:***@127.0.0.1" in single.stdout
    assert sweep.returncode == 2 and "Error executing job with overrides" in sweep.stderr
    client = MlflowClient(f"sqlite:///{server_dir}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("losslab").experiment_id])
    # the single run, the sweep's parent (ended, not left RUNNING) and the job that trained
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED", "FINISHED"]
    assert all(r.data.tags["api_token"] == "***" for r in runs if "api_token" in r.data.tags)
