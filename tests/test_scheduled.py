"""A sweep worker on a schedule: the README's crontab line, fired twice as cron runs it
(``sh -c`` with cron's short environment), continues one study and stops at its total."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from tests.helpers import REPO

# whole sweeps through the installed command;
# each test is given a new store (tests/helpers.py: new_store)
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("mlflow_db")]


# what a trial trains is not what this test is about: one small model per trial
SMALL_TRIALS = "model=mlp data.folds=1 trainer.epochs=1"


def crontab_command(folder: Path) -> str:
    """The command of the README's crontab line, with its folder and ``losslab`` placed and
    :data:`SMALL_TRIALS` added to the sweep's overrides."""
    readme = (REPO / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if re.match(r"^\*/\d+ \* \* \* \* ", ln))
    command = line.split(" ", 5)[5].replace(" >> sweep.log", f" {SMALL_TRIALS} >> sweep.log")
    assert SMALL_TRIALS in command
    return command.replace("/srv/sweeps", str(folder)).replace(
        "/opt/venv/bin/losslab", shutil.which("losslab")
    )


def fire(folder: Path) -> None:
    cron_env = {"PATH": "/usr/bin:/bin", "HOME": str(folder), "SHELL": "/bin/sh"}
    subprocess.run(["sh", "-c", crontab_command(folder)], env=cron_env, timeout=600, check=True)


def test_each_firing_adds_its_share_to_one_study(tmp_path):
    fire(tmp_path)
    study = optuna.load_study(study_name="nightly", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert len(study.trials) == 2
    fire(tmp_path)
    study = optuna.load_study(study_name="nightly", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parents = [r for r in runs if r.data.tags.get("losslab.run_type") == "sweep"]
    children = [r for r in runs if r.data.tags.get("losslab.run_type") == "job"]
    assert len(parents) == 2 and len(children) == 4
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {p.info.run_id for p in parents}
    first, second = sorted(parents, key=lambda r: r.info.start_time)
    assert second.data.tags["losslab.continues"] == first.info.run_id
    assert "Traceback" not in (tmp_path / "sweep.log").read_text()
