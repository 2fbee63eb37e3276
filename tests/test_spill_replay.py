"""Offline runs and their replay, in-process: a run that starts with its store unusable
records every call into its spill folder, and replay writes exactly that into a store; and
the patience a run grants a store that stopped answering, against a port nobody listens on.

The same paths through real servers and killed processes are the slow tests in
tests/test_faults.py; these prove the logic in seconds."""

from __future__ import annotations

import socket
import time

import pytest
from mlflow import MlflowClient

from losslab.tracking.patience import Patience, StoreAway
from losslab.tracking.replay import replay
from losslab.tracking.run import Liveness, RunStart, TrackedRun
from losslab.tracking.spill import SPILL_DIR

STEPS = 25


def test_an_offline_run_spills_every_call_and_replay_writes_them_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spill_dir = tmp_path / SPILL_DIR
    live = Liveness(spill_dir=spill_dir, start_offline="the store is down (test)")
    plot = tmp_path / "curve.txt"
    plot.write_text("points")
    with TrackedRun(uri, "offline", RunStart(run_name="r", tags={"t": "1"}), live) as run:
        assert run.offline
        run.log_params({"lr": 0.01, "model": {"units": [4, 2]}})
        for step in range(STEPS):
            run.writer.add(step, {"loss": 1.0 / (step + 1)}, "batch/")
        run.log_metrics({"objective": 0.75})
        run.log_artifact(plot, "plots")
    client = MlflowClient(uri)
    assert client.search_experiments(filter_string="name = 'offline'") == []

    run_id, counts = replay(spill_dir, uri)
    stored = client.get_run(run_id)
    assert stored.info.status == "FINISHED"
    assert stored.info.run_name == "r"
    assert stored.data.tags["t"] == "1"
    assert stored.data.params["lr"] == "0.01"
    assert stored.data.metrics["objective"] == 0.75
    history = client.get_metric_history(run_id, "batch/loss")
    assert sorted(m.step for m in history) == list(range(STEPS))
    assert [a.path for a in client.list_artifacts(run_id, "plots")] == ["plots/curve.txt"]
    assert counts.get("artifacts") == 1

    again = sorted(p.name for p in spill_dir.iterdir())
    with pytest.raises(FileNotFoundError, match="already replayed"):
        replay(spill_dir, uri)
    assert sorted(p.name for p in spill_dir.iterdir()) == again
    assert len(client.get_metric_history(run_id, "batch/loss")) == STEPS


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_patience_gives_up_after_its_limit_not_mlflows_retries():
    uri = f"http://127.0.0.1:{_closed_port()}"
    patience = Patience(uri, after_s=1.0)
    calls = []

    def refused() -> None:
        calls.append(time.monotonic())
        raise ConnectionError("Connection refused")

    began = time.monotonic()
    with pytest.raises(StoreAway, match="did not answer for 1s"):
        patience.call(refused)
    assert 1.0 <= time.monotonic() - began < 10.0
    assert len(calls) >= 2  # retried while within its patience


def test_patience_raises_a_bad_request_at_once_and_forgets_an_outage_that_ended():
    patience = Patience("http://127.0.0.1:1", after_s=30.0)

    def bad() -> None:
        raise ValueError("RESOURCE_DOES_NOT_EXIST: no such run")

    began = time.monotonic()
    with pytest.raises(ValueError, match="no such run"):
        patience.call(bad)
    assert time.monotonic() - began < 1.0
    flaky = iter([ConnectionError("Connection refused"), None])

    def recovers() -> str:
        err = next(flaky)
        if err is not None:
            raise err
        return "stored"

    assert patience.call(recovers) == "stored"
    assert patience.away_since is None


def test_patience_without_a_limit_calls_once_as_mlflow_would():
    patience = Patience("http://127.0.0.1:1", after_s=None)
    assert patience.limit_s is None
    assert patience.call(lambda: 3) == 3
    patience.interrupted = True
    assert patience.limit_s == pytest.approx(3.0)
