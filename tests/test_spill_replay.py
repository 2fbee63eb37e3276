"""Offline runs and their replay, in-process: a run that starts with its store unusable
records every call into its spill folder, and replay writes exactly that into a store; and
the patience a run grants a store that stopped answering, against a port nobody listens on.

The same paths through real servers and killed processes are the slow tests in
tests/test_faults.py; these prove the logic in seconds."""

from __future__ import annotations

import json
import socket
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient

from losslab.tracking.patience import Patience, StoreAway
from losslab.tracking.replay import main, replay
from losslab.tracking.run import Liveness, RunStart, TrackedRun
from losslab.tracking.spill import RECORDS, SPILL_DIR, SpillError, has_records, read

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
    with pytest.raises(SpillError, match="already replayed"):
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


def _offline_run(tmp_path, uri: str):
    """A run whose store was unusable from its start: everything went to its spill."""
    spill_dir = tmp_path / SPILL_DIR
    live = Liveness(spill_dir=spill_dir, start_offline="the store is down (test)")
    note = tmp_path / "note.txt"
    note.write_text("kept")
    with TrackedRun(uri, "tampered", RunStart(run_name="t"), live) as run:
        run.log_metrics({"objective": 0.5})
        run.log_artifact(note, "notes")
    return spill_dir


def _append(spill_dir, *lines: str) -> None:
    with (spill_dir / RECORDS).open("a") as f:
        f.write("".join(line + "\n" for line in lines))


def test_replay_leaves_out_what_it_cannot_trust_and_names_each_line(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spill_dir = _offline_run(tmp_path, uri)
    before = len((spill_dir / RECORDS).read_text().splitlines())
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the store")
    _append(
        spill_dir,
        json.dumps({"kind": "artifact", "file": "../secret.txt", "artifact_path": "x"}),
        json.dumps({"kind": "artifact", "file": str(outside), "artifact_path": "x"}),
        json.dumps({"kind": "teleport", "to": "elsewhere"}),
        '{"kind": "metrics", "points": [["late", 1.0, 0, 0]',  # cut by a full disk
    )
    assert main([str(spill_dir), "--strict"]) == 2
    assert "lies outside the spill folder" in capsys.readouterr().err
    assert MlflowClient(uri).search_experiments(filter_string="name = 'tampered'") == []

    assert main([str(spill_dir)]) == 0
    out, err = capsys.readouterr()
    assert f"writing into {uri} (the store the run used" in out
    left_out = [line for line in err.splitlines() if "left out" in line]
    assert len(left_out) == 4
    numbers = range(before + 1, before + 5)
    assert all(f"line {n} left out" in text for n, text in zip(numbers, left_out, strict=True))
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tampered").experiment_id])
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["notes"]
    assert run.data.metrics == {"objective": 0.5}


def test_replay_into_another_store_says_which_the_run_was_made_against(tmp_path, capsys):
    spill_dir = _offline_run(tmp_path, f"sqlite:///{tmp_path / 'first.db'}")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert main([str(spill_dir), "--tracking-uri", other]) == 0
    out = capsys.readouterr().out
    assert f"writing into {other} (the run was made against sqlite:///" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty: the run spilled nothing"),
        ('{"kind": "run", "ur', "line 1: not JSON"),
        ('{"kind": "run", "format": 9, "uri": "x", "run_id": "y"}\n', "format 9"),
        ('{"kind": "metrics", "points": []}\n', "must be the run's header"),
    ],
)
def test_a_spill_without_a_usable_header_is_refused_in_one_line(tmp_path, capsys, content, message):
    folder = tmp_path / SPILL_DIR
    folder.mkdir()
    (folder / RECORDS).write_text(content)
    assert main([str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not has_records(folder)  # the dead-run check ends its run instead of waiting


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.text(max_size=80), max_size=6), names=st.lists(st.text(max_size=20)))
def test_whatever_a_spill_holds_read_refuses_it_or_keeps_files_inside(
    tmp_path_factory, lines, names
):
    folder = tmp_path_factory.mktemp("spill")
    (folder / "inside.txt").write_text("x")
    header = json.dumps({"kind": "run", "format": 1, "uri": "sqlite:///x.db", "run_id": "r"})
    made = [json.dumps({"kind": "artifact", "file": n, "artifact_path": None}) for n in names]
    (folder / RECORDS).write_text("\n".join([header, *lines, *made]) + "\n")
    try:
        spilled = read(folder)
    except SpillError:
        return
    root = folder.resolve()
    for _, item in spilled.items:
        for key in ("file", "example"):
            if key in item:
                assert (root / item[key]).resolve().is_relative_to(root)
