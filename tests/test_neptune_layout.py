"""A Neptune script moved by one import: ``losslab.keras.NeptuneCallback`` records the keys,
steps and params that neptune-exporter gives the same fit logged by Neptune's own callback.

Neptune's side is read from its offline files (``NEPTUNE_MODE=offline``, ``.neptune/``) and
mapped as neptune-exporter's MLflow loader maps attribute paths: characters outside
``[A-Za-z0-9_\\-. /]`` (whitespace included) replaced by ``_``, at most 250 characters, float
series to metrics at their step (Neptune numbers appended points 0, 1, ... when no step is
given), atoms to params.
"""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlflow import MlflowClient

from losslab.keras import MlflowLogger, NeptuneCallback
from losslab.tracking.layout import neptune_key

# each test records into a new store of its own, copied (tests/helpers.py: new_store)
pytestmark = pytest.mark.usefixtures("mlflow_db")

N, BATCH, EPOCHS, N_VAL, VAL_BATCH = 200, 16, 3, 120, 32
METRIC = "pr auc@0.5"  # a name neptune-exporter has to change: "pr auc_0.5"


def exporter_key(path: str) -> str:
    """neptune-exporter's ``MLflowLoader._sanitize_attribute_name``, as written there."""
    return re.sub(r"[^a-zA-Z0-9_\-\.\s/]", "_", path)[:250]


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] + 0.3 * rng.normal(size=n) > 1.0).astype("float32")


def fit(callback: keras.callbacks.Callback) -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=[keras.metrics.AUC(name=METRIC)])
    model.fit(
        *data(N, 0),
        batch_size=BATCH,
        epochs=EPOCHS,
        validation_data=data(N_VAL, 1),
        validation_batch_size=VAL_BATCH,
        callbacks=[callback],
        verbose=0,
    )


def neptune_export(folder: Path, namespace: str) -> tuple[dict[str, list[int]], dict[str, str]]:
    """Each float series under ``namespace`` as its exported key -> steps, and each atom as
    its exported param key -> value, from Neptune's offline operation logs."""
    steps: dict[str, list[int]] = collections.defaultdict(list)
    params: dict[str, str] = {}
    for log in sorted(folder.rglob("data-*.log")):
        for line in filter(str.strip, log.read_text().splitlines()):
            op = json.loads(line)["obj"]
            if op["path"][0] != namespace:
                continue
            key = exporter_key("/".join(op["path"]))
            if op["type"] == "LogFloats":
                for point in op["values"]:
                    step = point.get("step")
                    steps[key].append(len(steps[key]) if step is None else int(step))
            elif op["type"].startswith("Assign"):
                params[key] = str(op["value"])
    return dict(steps), params


def mlflow_steps(client: MlflowClient, run_id: str) -> dict[str, list[int]]:
    run = client.get_run(run_id)
    return {
        key: sorted(m.step for m in client.get_metric_history(run_id, key))
        for key in run.data.metrics
    }


@pytest.fixture
def store(tmp_path, monkeypatch) -> MlflowClient:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-neptune")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(None)
    return MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")


@pytest.mark.parametrize("log_on_batch", [True, False])
def test_same_keys_steps_and_params_as_neptune_exported(store, tmp_path, monkeypatch, log_on_batch):
    neptune = pytest.importorskip("neptune")
    theirs = pytest.importorskip("neptune_tensorflow_keras")
    monkeypatch.setenv("NEPTUNE_MODE", "offline")
    run = neptune.init_run(capture_hardware_metrics=False, source_files=[])
    fit(theirs.NeptuneCallback(run=run, log_on_batch=log_on_batch))
    run.stop()
    expected_steps, expected_params = neptune_export(tmp_path / ".neptune", "training")

    fit(NeptuneCallback(log_on_batch=log_on_batch))  # no active run: a run of its own
    (ours,) = store.search_runs([store.get_experiment_by_name("from-neptune").experiment_id])
    assert ours.info.status == "FINISHED"
    got = mlflow_steps(store, ours.info.run_id)
    assert got == {key: sorted(steps) for key, steps in expected_steps.items()}
    assert f"training/train/epoch/{exporter_key(METRIC)}" in got
    assert ("training/train/batch/loss" in got) == log_on_batch
    params = {k: v for k, v in ours.data.params.items() if k.startswith("training/")}
    assert params.keys() == expected_params.keys()
    fit_params = {k: v for k, v in params.items() if "/fit_params/" in k}
    assert fit_params == {k: v for k, v in expected_params.items() if "/fit_params/" in k}
    artifacts = [a.path for a in store.list_artifacts(ours.info.run_id, "training/model/summary")]
    assert artifacts == ["training/model/summary/summary.txt"]


def test_into_the_given_mlflow_run_with_another_namespace(store):
    with mlflow.start_run() as active:
        pass  # ended: the callback records into it all the same, and leaves its status
    fit(NeptuneCallback(run=active, base_namespace="keras/", log_model_summary=False))
    run = store.get_run(active.info.run_id)
    assert set(run.data.metrics) == {
        f"keras/{kind}/epoch/{name}"
        for kind in ("train", "validation")
        for name in ("loss", exporter_key(METRIC))
    } | {"keras/model/learning_rate"}
    assert run.info.status == "FINISHED"
    assert len(store.search_runs([run.info.experiment_id])) == 1


def test_mlflow_logger_neptune_layout_in_an_active_run(store):
    with mlflow.start_run() as active:
        fit(MlflowLogger(layout="neptune", every_n_batches=5))
    keys = set(store.get_run(active.info.run_id).data.metrics)
    assert "training/train/batch/loss" in keys and "batch/loss" not in keys
    history = store.get_metric_history(active.info.run_id, "training/train/batch/loss")
    steps = [m.step for m in history]
    assert sorted(steps) == list(range(0, EPOCHS * -(-N // BATCH), 5))


def test_a_neptune_run_is_refused_before_training():
    with pytest.raises(TypeError, match="run=object: an MLflow run"):
        NeptuneCallback(run=object())
    with pytest.raises(ValueError, match="layout=wandb: one of losslab, neptune"):
        MlflowLogger(layout="wandb")


@given(st.text(max_size=400))
def test_a_key_keeps_every_allowed_character_and_replaces_the_rest(path):
    key = neptune_key(path)
    assert len(key) == min(len(path), 250)
    for before, after in zip(path, key, strict=False):
        allowed = re.fullmatch(r"[A-Za-z0-9_\-.\s/]", before) is not None
        assert after == (before if allowed else "_")


def test_a_store_away_spills_neptune_keys_and_replay_writes_them(tmp_path):
    from losslab.tracking.replay import replay
    from losslab.tracking.run import Liveness, RunStart, TrackedRun

    uri, spill_dir = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "spill"
    live = Liveness(spill_dir=spill_dir, start_offline="the store is down (test)")
    with TrackedRun(uri, "from-neptune", RunStart(run_name="r"), live) as run:
        fit(NeptuneCallback(run=run, log_on_batch=True))
    run_id, _ = replay(spill_dir, uri)
    client = MlflowClient(uri)
    stored = client.get_run(run_id)
    steps = len(client.get_metric_history(run_id, "training/validation/batch/loss"))
    assert steps == EPOCHS * -(-N_VAL // VAL_BATCH)
    assert "training/train/epoch/loss" in stored.data.metrics
    assert stored.data.params["training/fit_params/epochs"] == str(EPOCHS)


def test_the_callback_stays_copyable_with_its_key_maps():
    import copy

    copied = copy.deepcopy(NeptuneCallback(base_namespace="a b", log_on_batch=True))
    assert copied.layout.batch["pr auc@0.5"] == "a b/train/batch/pr auc_0.5"
    assert copied.layout.batch["val_loss"] is None and copied.layout.batch["size"] is None
    assert copied.layout.epoch["val_loss"] == "a b/validation/epoch/loss"
    assert copied.layout.epoch["epoch_time_s"] is None
