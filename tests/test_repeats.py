"""Repeats as a study dimension: the command line, the groups, the findings, the study."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from mlflow import MlflowClient

from losslab import compare_groups
from losslab.config import ConfigError
from losslab.repeats import expand, group_of
from tests.helpers import REPO


def test_repeats_become_a_multirun_over_consecutive_seeds():
    assert expand(["repeats=3", "loss=focal"]) == ["-m", "loss=focal", "seed=range(42,45)"]
    assert expand(["-m", "seed=7", "imbalance=none,oversample", "repeats=2"]) == [
        "-m",
        "imbalance=none,oversample",
        "seed=range(7,9)",
    ]
    assert expand(["loss=focal"]) == ["loss=focal"]  # no repeats: untouched
    assert expand(["--cfg", "job", "repeats=2"])[:2] == ["--cfg", "job"]  # Hydra's mode kept


@pytest.mark.parametrize(
    "args, said",
    [
        (["repeats=0"], "repeats=0: a whole number of runs per configuration, 1 or more"),
        (["repeats=two"], "repeats=two: a whole number"),
        (["repeats=3", "seed=1,2"], "repeats=3 with seed=1,2: give the number of repeats or"),
        (["repeats=2", "hparams_search=optuna"], "repeats=2 with hparams_search=optuna: a search"),
    ],
)
def test_repeats_that_cannot_run_are_refused(args, said):
    with pytest.raises(ConfigError, match=said.replace("(", r"\(")):
        expand(args)


def test_a_refused_repeat_is_one_line_and_exit_code_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "repeats=0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: repeats=0: a whole number of runs per configuration, 1 or more"
    ]
    assert not (tmp_path / "mlflow.db").exists()


def test_a_group_is_the_configuration_but_its_seed():
    assert group_of(["seed=43", "loss=focal", "imbalance=none"]) == "imbalance=none loss=focal"
    assert group_of(["seed=1"]) == "(defaults)"


def _study(groups: dict[str, list[float]], seeds: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs as ``mlflow.search_runs`` gives them and their table, one row per (group, seed)."""
    rows = [
        {"tags.losslab.overrides": f"+variant={g} seed={s} trainer.epochs=5", "params.seed": s}
        for g, values in groups.items()
        for s in seeds[: len(values)]
    ]
    values = [v for vs in groups.values() for v in vs]
    table = pd.DataFrame({"status": ["FINISHED"] * len(values), "test_recall_at_fpr": values})
    return pd.DataFrame(rows), table


def test_findings_name_a_real_difference_and_not_seed_noise():
    runs, table = _study(
        {
            "none": [0.40, 0.55, 0.47, 0.62, 0.50],
            "oversample": [0.70, 0.83, 0.78, 0.90, 0.81],  # about 0.3 more on every seed
            "balanced": [0.75, 0.80, 0.70, 0.95, 0.77],
            "noise": [0.62, 0.35, 0.70, 0.40, 0.55],  # none's spread, no shift
        },
        [42, 43, 44, 45, 46],
    )
    groups = compare_groups.group(runs, table)
    assert list(groups.summary["group"]) == [
        "+variant=none",
        "+variant=oversample",
        "+variant=balanced",
        "+variant=noise",
    ]
    assert list(groups.summary["runs"]) == [5, 5, 5, 5]
    said = compare_groups.findings(groups, table, 0.01)
    assert said[0].startswith(
        "+variant=oversample finds 0.30 [+0.28, +0.31] more of the minority at 1% FPR than "
        "+variant=none"
    )
    assert said[2].startswith("+variant=noise and +variant=none are not distinguishable")
    assert said[3].startswith(
        "the best by mean, +variant=oversample, is not distinguishable from +variant=balanced"
    )


def test_repeats_pair_on_the_seeds_both_groups_ran():
    runs, table = _study({"a": [0.1, 0.2, 0.3], "b": [0.4, 0.5]}, [1, 2, 3])
    groups = compare_groups.group(runs, table)
    (d,) = groups.differences
    assert d.n == 2 and d.mean == pytest.approx(-0.3)


@pytest.mark.parametrize(
    "args, said",
    [
        (["remedies=none,magic"], "error: remedies=none,magic: use some of none,class_weight,"),
        (
            ["remedies=oversample_augment", "data=synthetic_fraud"],
            "error: remedies=oversample_augment: augmentation needs image data",
        ),
    ],
)
def test_a_study_that_cannot_run_is_refused_in_one_line(tmp_path, monkeypatch, capsys, args, said):
    from losslab.study_cli import main

    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert capsys.readouterr().err.splitlines()[0].startswith(said)
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_the_study_command_compares_every_remedy_over_its_repeats(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "losslab",
            "study",
            "remedies=none,balanced,oversample",
            "repeats=2",
            "trainer.epochs=4",
            "trainer.threads=1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (exp,) = [e.experiment_id for e in client.search_experiments() if e.name == "losslab"]
    runs = client.search_runs([exp])
    (parent,) = [r for r in runs if r.data.tags["losslab.run_type"] == "sweep"]
    jobs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(jobs) == 6 and {r.info.status for r in jobs} == {"FINISHED"}
    groups = {r.data.tags["losslab.group"] for r in jobs}
    assert len(groups) == 3 and all("seed" not in g for g in groups)
    assert {r.data.params["seed"] for r in jobs} == {"42", "43"}

    out = tmp_path / "outputs" / "study" / parent.info.run_id
    summary = pd.read_csv(out / "groups.csv")
    assert list(summary["runs"]) == [2, 2, 2]
    for metric in ("test_recall_at_fpr", "test_pr_auc"):
        assert (summary[f"{metric}_low"] <= summary[metric]).all()
        assert (summary[metric] <= summary[f"{metric}_high"]).all()
    assert len(pd.read_csv(out / "differences.csv")) == 3  # every pair of three remedies
    assert "+variant=balanced" in proc.stdout and "paired repeats" in proc.stdout
    page = (out / "comparison.html").read_text()
    assert "Findings" in page and 'alt="forest"' in page
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert {"comparison/groups.csv", "comparison/forest.png"} <= logged
    for job in jobs:  # each run's test figures carry their own interval
        metrics = job.data.metrics
        assert metrics["test_pr_auc_ci_low"] <= metrics["test_pr_auc"] + 1e-9
        assert json.loads(job.data.tags.get("losslab.shared_overrides", "[]")) == []
