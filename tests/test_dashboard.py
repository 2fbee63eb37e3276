"""A sweep's study in Optuna Dashboard for real: the toy app sweeps into SQLite or a journal
file, ``optuna-dashboard`` serves that storage on 127.0.0.1, and its HTTP API shows the study
that ``optuna.load_study`` reads from the same storage."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.helpers import free_port, load_study, sweep_toy_app

DASHBOARD = shutil.which("optuna-dashboard")
needs_dashboard = pytest.mark.skipif(
    DASHBOARD is None, reason="optuna-dashboard is missing: pip install -e '.[test]'"
)


def sweep(folder: Path, *overrides: str) -> None:
    """The toy app's sweep into ``folder/sweep``: its study is named ``sweep``. With the
    sampler's fixed seed, trial 0 is pruned, trial 1 fails and 2 and 3 complete."""
    sweep_toy_app(
        folder / "sweep",
        "hydra.sweeper.n_trials=4",
        "fail_when_x_above=0.5",
        "prune_when_x_above=-1.0",
        *overrides,
    )


@contextlib.contextmanager
def dashboard(storage: str, folder: Path):
    """``optuna-dashboard STORAGE`` on 127.0.0.1 and a free port, until the block ends; its
    whole process group (gunicorn's workers too) is stopped, killed if it lingers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = folder / "dashboard.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [DASHBOARD, storage, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.time() + 60
        while True:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{url}/api/meta", timeout=2) as answer,
            ):
                if answer.status == 200:
                    break
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"optuna-dashboard {storage} never answered:\n{log_path.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):  # a worker that outlived its master
            os.killpg(proc.pid, signal.SIGKILL)


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as answer:
        assert answer.status == 200, url
        return json.load(answer)


def as_loaded(trial: dict) -> dict:
    """A trial of the dashboard's API in the terms of an Optuna ``FrozenTrial``."""
    return {
        "number": trial["number"],
        "state": trial["state"],
        "params": {p["name"]: float(p["param_external_value"]) for p in trial["params"]},
        "ranges": {
            p["name"]: (p["distribution"]["low"], p["distribution"]["high"])
            for p in trial["params"]
        },
        "values": trial.get("values"),
        "user_attrs": {a["key"]: a["value"] for a in trial["user_attrs"]},
    }


@pytest.mark.slow
@needs_dashboard
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_dashboard_shows_the_study_a_sweep_wrote(tmp_path, kind):
    if kind == "sqlite":  # the sweeper's default storage, in the sweep folder
        sweep(tmp_path)
        url = f"sqlite:///{tmp_path}/sweep/optuna.db"
        served = url
    else:  # optuna-dashboard takes a journal file's path, not the sweeper's journal: URL
        url = f"journal:{tmp_path}/study.log"
        sweep(tmp_path, f"hydra.sweeper.storage={url}")
        served = f"{tmp_path}/study.log"
        assert not (tmp_path / "sweep" / "optuna.db").exists()
    study = load_study(url, "sweep")
    states = [t.state for t in study.trials]
    assert sorted(s.name for s in states) == ["COMPLETE", "COMPLETE", "FAIL", "PRUNED"], states

    with dashboard(served, tmp_path) as server:
        summaries = get(f"{server}/api/studies")["study_summaries"]
        assert [s["study_name"] for s in summaries] == ["sweep"]
        study_id = summaries[0]["study_id"]
        assert summaries[0]["directions"] == ["minimize"]
        detail = get(f"{server}/api/studies/{study_id}")
        importances = get(f"{server}/api/studies/{study_id}/param_importances")

    assert detail["name"] == study.study_name == "sweep"
    assert detail["directions"] == [d.name.lower() for d in study.directions] == ["minimize"]
    assert len(detail["trials"]) == len(study.trials) == 4
    expected = [
        {
            "number": t.number,
            "state": t.state.name.capitalize(),  # the dashboard's spelling: Complete, Pruned, Fail
            "params": t.params,
            "ranges": {k: (d.low, d.high) for k, d in t.distributions.items()},
            "values": t.values,
            "user_attrs": t.user_attrs,
        }
        for t in study.trials
    ]
    assert [as_loaded(t) for t in detail["trials"]] == expected
    failed = next(t for t in study.trials if t.state == TrialState.FAIL)
    assert failed.user_attrs["fail_reason"].startswith("ValueError: x=")
    assert set(study.trials[0].params) == {"x", "y"}
    assert study.trials[0].distributions["x"].low == -2.0
    assert [t["number"] for t in detail["best_trials"]] == [study.best_trial.number]
    assert {i["name"] for i in importances["param_importances"][0]} == {"x", "y"}
