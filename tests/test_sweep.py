"""The Optuna sweeper for real: studies in SQLite, a journal file and PostgreSQL, resumed,
shared by two processes, pruned, with failing jobs, and with jobs in submitit subprocesses."""

from __future__ import annotations

import logging
import re

import optuna
import pandas as pd
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution as Categorical
from optuna.distributions import FloatDistribution as Float
from optuna.distributions import IntDistribution as Int
from optuna.trial import TrialState

from losslab.tracking import tag_keys
from tests.helpers import (
    HOPELESS_LR,
    STUDY,
    SWEEP,
    load_study,
    needs_postgres,
    run_cli,
    runs_by_type,
    start_cli,
    sweep_toy_app,
)

# each test records into a new store of its own, copied (tests/helpers.py: new_store)
pytestmark = pytest.mark.usefixtures("mlflow_db")


# -- search space ------------------------------------------------------------------------
def test_search_space_syntax_of_the_published_plugin():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from hydra_plugins.losslab_optuna_sweeper.search_space import parse

    space = parse(
        {"optimizer.lr": "tag(log, interval(1e-5, 1e-1))", "model.dropout": "interval(0, 0.8)"},
        ["loss=choice(bce,focal)", "trainer.batch_size=range(16,65,16)", "trainer.epochs=3"],
    )
    assert space.distributions == {
        "optimizer.lr": FloatDistribution(1e-5, 1e-1, log=True),
        "model.dropout": FloatDistribution(0.0, 0.8),
        "loss": CategoricalDistribution(["bce", "focal"]),
        "trainer.batch_size": IntDistribution(16, 64, step=16),
    }
    assert space.fixed == ["trainer.epochs=3"]
    # a command-line value replaces the configured search for that key
    assert parse({"model.dropout": "interval(0, 0.8)"}, ["model.dropout=0.5"]).fixed == [
        "model.dropout=0.5"
    ]


@pytest.mark.parametrize(
    ("value", "values"),
    [  # the published plugin's meaning: both ends of a range included
        ("range(16,64,16)", [16, 32, 48, 64]),
        ("range(16,65,16)", [16, 32, 48, 64]),
        ("range(1,4)", [1, 2, 3, 4]),
        ("range(4,1,-1)", [1, 2, 3, 4]),
        ("range(10,0,-3)", [1, 4, 7, 10]),
        ("range(1.0,0.0,-0.25)", [0.0, 0.25, 0.5, 0.75, 1.0]),
        ("range(0.0,1.0,0.25)", [0.0, 0.25, 0.5, 0.75, 1.0]),
        ("shuffle(range(1,4))", [1, 2, 3]),  # Hydra's own range: end excluded
        ("shuffle(choice(b,a,c))", ["a", "b", "c"]),
        ("choice(true,false)", [True, False]),
    ],
)
def test_each_discrete_search_to_the_values_optuna_draws_from(value, values):
    from optuna.distributions import CategoricalDistribution

    from hydra_plugins.losslab_optuna_sweeper.search_space import parse

    dist = parse({"k": value}, []).distributions["k"]
    if isinstance(dist, CategoricalDistribution):
        assert list(dist.choices) == values
    else:
        n = round((dist.high - dist.low) / dist.step) + 1
        assert [dist.low + i * dist.step for i in range(n)] == pytest.approx(values)


def test_the_published_range_example_has_23_values():
    from hydra_plugins.losslab_optuna_sweeper.search_space import parse

    dist = parse({}, ["x=range(-5.5,5.5,step=0.5)"]).distributions["x"]
    assert (dist.low, dist.high, dist.step) == (-5.5, 5.5, 0.5)
    assert round((dist.high - dist.low) / dist.step) + 1 == 23


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"type": "float", "low": 1e-5, "high": 0.1, "log": True}, Float(1e-5, 0.1, log=True)),
        ({"type": "float", "low": 0, "high": 1, "step": 0.5}, Float(0.0, 1.0, step=0.5)),
        ({"type": "float", "low": -1, "high": 1}, Float(-1.0, 1.0)),
        ({"type": "int", "low": 1, "high": 9, "step": 2}, Int(1, 9, step=2)),
        ({"type": "int", "low": 2, "high": 64, "log": True}, Int(2, 64, log=True)),
        ({"type": "int", "low": 0, "high": 3}, Int(0, 3)),
        ({"type": "categorical", "choices": ["adam", 1, True]}, Categorical(["adam", 1, True])),
    ],
)
def test_the_deprecated_search_space_node_means_what_it_meant(node, expected):
    from hydra_plugins.losslab_optuna_sweeper.checks import params
    from hydra_plugins.losslab_optuna_sweeper.search_space import parse

    with pytest.warns(FutureWarning, match="search_space is deprecated"):
        lines = params({"search_space": {"k": node}})
    assert parse(lines, []).distributions["k"] == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("interval(0.5, 0.1)", "is empty"),
        ("range(5, 1)", "is empty"),
        ("tag(log, interval(0, 1))", "start > 0"),
    ],
)
def test_unsearchable_space_is_refused_with_the_key(value, message):
    from hydra_plugins.losslab_optuna_sweeper.search_space import SearchSpaceError, parse

    with pytest.raises(SearchSpaceError, match=message) as err:
        parse({"model.dropout": value}, [])
    assert "model.dropout" in str(err.value)


# -- studies -----------------------------------------------------------------------------
@pytest.mark.slow
def test_sweeps_on_other_data_never_share_a_study(tmp_path):
    default = [a for a in SWEEP if not a.startswith("hydra.sweeper.study_name")]
    for majority in (9, 8):
        run_cli(tmp_path, *default, "hydra.sweeper.n_trials=1", f"data.majority={majority}")
    folders = sorted((tmp_path / "outputs" / "sweeps").iterdir())
    assert len(folders) == 2 and all(f.name.startswith(f"{STUDY}-") for f in folders)
    for folder in folders:  # each its own study, holding its own single trial
        assert len(load_study(f"sqlite:///{folder}/optuna.db", folder.name).trials) == 1

    named = [*SWEEP, "hydra.sweeper.n_trials=2"]
    run_cli(tmp_path, *named)
    proc = run_cli(tmp_path, *named, "data.n_minority=19", check=False)
    assert proc.returncode == 2
    assert "data.n_minority: 20 -> 19" in proc.stderr
    assert "hydra.sweeper.allow_changed_study=true" in proc.stderr
    sweeps, _ = runs_by_type(tmp_path)
    assert len(sweeps) == 3  # the refused sweep recorded nothing
    assert len(load_study(f"sqlite:///{tmp_path}/outputs/sweeps/{STUDY}/optuna.db").trials) == 2


@pytest.mark.slow
def test_sweep_writes_study_to_sqlite_and_a_rerun_continues_it(tmp_path):
    run_cli(tmp_path, *SWEEP, "hydra.sweeper.n_trials=2")
    proc = run_cli(tmp_path, *SWEEP, "hydra.sweeper.n_trials=3")
    said = proc.stdout + proc.stderr  # nothing repeated per trial, nothing TensorFlow counts
    for noise in ("Warning", "retracing", "absl::InitializeLog", "\x1b["):
        assert noise not in said, noise
    assert re.search(r"3 trials \(\d complete, \d pruned, 0 fail\); chosen trial \d: [\d.]+;", said)
    study = load_study(f"sqlite:///{tmp_path}/outputs/sweeps/{STUDY}/optuna.db")
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 3
    assert set(study.trials[0].params) == {"optimizer.lr", "model.dropout", "imbalance.ratio"}

    sweeps, jobs = runs_by_type(tmp_path)
    first, parent = sorted(sweeps, key=lambda r: r.info.start_time)  # one per command
    assert parent.data.tags[tag_keys.CONTINUES] == first.info.run_id
    assert {first.info.status, parent.info.status} == {"FINISHED"}
    nested = {p.info.run_id: [] for p in sweeps}
    for job in jobs:
        nested[job.data.tags["mlflow.parentRunId"]].append(job.data.tags["optuna.trial_number"])
    assert sorted(nested[first.info.run_id]) == ["0", "1"] and nested[parent.info.run_id] == ["2"]
    by_number = {int(r.data.tags["optuna.trial_number"]): r for r in jobs}
    for trial in study.trials:
        child = by_number[trial.number]
        assert trial.user_attrs["mlflow_run_id"] == child.info.run_id
        assert float(child.data.params["optimizer.lr"]) == pytest.approx(
            trial.params["optimizer.lr"]
        )
    # the study's best as the parent's params, under the keys its children use
    assert parent.data.params.keys() == study.best_params.keys()
    for key, value in study.best_params.items():
        assert float(parent.data.params[key]) == pytest.approx(value)
    # named by what they vary, distinct, short enough for the runs list
    assert parent.info.run_name == f"sweep {STUDY}"
    shown = [r.info.run_name for r in jobs]
    assert len(set(shown)) == 3 and all(len(name) <= 60 for name in shown), shown
    for name in shown:
        assert re.fullmatch(r"(\[pruned\] )?#\d( (lr|dropout|ratio)=[-\d.e]+){3}", name), name
    tags = parent.data.tags
    assert tags["optuna.study_name"] == STUDY
    assert tags["optuna.sampler"] == "TPESampler"
    chosen = study.trials[int(tags["optuna.best_trial"])]  # ties broken by losslab.search.ties
    assert parent.data.metrics["best_value"] == pytest.approx(study.best_value) == chosen.value
    assert float(tags["best.optimizer.lr"]) == pytest.approx(chosen.params["optimizer.lr"])
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "optuna")}
    assert {
        "optuna/trials.csv",
        "optuna/best_trial.json",
        "optuna/optimization_history.png",
        "optuna/search_space.json",
    } <= artifacts


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_sweep_processes_share_one_study(tmp_path, kind):
    storage = (
        f"sqlite:///{tmp_path}/shared.db" if kind == "sqlite" else f"journal:{tmp_path}/shared.log"
    )
    workers = [
        start_cli(
            tmp_path,
            *SWEEP,
            "hydra.sweeper.n_trials=4",
            f"hydra.sweeper.storage={storage}",
            "hydra.sweeper.study_name=shared",
            f"hydra.sweep.dir={tmp_path}/worker{i}",
            f"hydra.sweeper.sampler.seed={i}",  # workers draw different points
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=400)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = load_study(storage, "shared")
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in study.trials), [
        (t.number, t.state.name, t.user_attrs.get("fail_reason")) for t in study.trials
    ]
    ran = [
        len([d for d in (tmp_path / f"worker{i}").iterdir() if d.name.isdigit()]) for i in (0, 1)
    ]
    assert sum(ran) == 4 and min(ran) >= 1, ran  # each trial ran once, by one of the two
    assert len({t.user_attrs["mlflow_run_id"] for t in study.trials}) == 4
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 4, [
        (t.number, t.params["optimizer.lr"], str(t.datetime_start)[11:23]) for t in study.trials
    ]


@pytest.mark.slow
@needs_postgres
def test_postgresql_storage(tmp_path, postgres_url):
    run_cli(tmp_path, *SWEEP, "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={postgres_url}")
    study = load_study(postgres_url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    sweeps, _ = runs_by_type(tmp_path)
    assert sweeps[0].data.tags["optuna.storage"] == postgres_url  # no password to mask here


@pytest.mark.slow
def test_hopeless_trials_are_pruned(tmp_path):
    """lr=1e-9 cannot learn: after the first trials, its val_roc_auc is worse than the median
    (why val_roc_auc: tests.helpers.HOPELESS_LR)."""
    run_cli(
        tmp_path,
        *SWEEP,
        *HOPELESS_LR,
        "trainer.epochs=4",
        "hydra.sweeper.n_trials=8",
    )
    study = load_study(f"sqlite:///{tmp_path}/outputs/sweeps/{STUDY}/optuna.db")
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, [(t.params, t.state) for t in study.trials]
    assert any(t.params["optimizer.lr"] == 1e-9 for t in pruned)
    assert all(len(t.intermediate_values) < 4 for t in pruned)  # stopped before the last epoch
    assert study.best_params["optimizer.lr"] == 0.01
    _, jobs = runs_by_type(tmp_path)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    for trial in pruned:
        run = next(r for r in jobs if r.info.run_id == trial.user_attrs["mlflow_run_id"])
        assert run.data.tags["losslab.pruned"] == "true"
        assert run.data.tags["losslab.outcome"] == "pruned"
        assert run.info.run_name.startswith("[pruned] #"), run.info.run_name
        assert len(client.get_metric_history(run.info.run_id, "val_loss")) < 4
        last = trial.intermediate_values[max(trial.intermediate_values)]
        assert run.data.metrics["pruned_at_value"] == pytest.approx(last)  # reported last
        assert "objective" not in run.data.metrics  # not sorted beside complete trials

    from losslab.compare import build_table, find_runs

    parent, runs = find_runs(client, "losslab")
    table = build_table(client, runs, tmp_path / "compare")
    states = {int(row.trial): row.status for row in table.itertuples(index=False)}
    assert states == {
        t.number: "PRUNED" if t.state == TrialState.PRUNED else "FINISHED" for t in study.trials
    }
    complete = table["status"] == "FINISHED"
    assert table.loc[complete, "objective"].notna().all()
    assert table.loc[~complete, "objective"].isna().all()


@pytest.mark.slow
def test_trial_restoring_its_best_epoch_reports_its_best_so_far(tmp_path):
    """The preset restores each trial's best epoch of the objective (val_pr_auc), and the pruner
    sees what the trial would return."""
    run_cli(
        tmp_path,
        *SWEEP,
        "trainer.epochs=4",
        "hydra.sweeper.n_trials=2",
        "hydra/sweeper/pruner=none",
        "optimizer.lr=choice(0.05,0.003)",
    )
    study = load_study(f"sqlite:///{tmp_path}/outputs/sweeps/{STUDY}/optuna.db")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    for trial in study.trials:
        history = client.get_metric_history(trial.user_attrs["mlflow_run_id"], "val_pr_auc")
        epochs = [m.value for m in sorted(history, key=lambda m: m.step)]
        reported = [trial.intermediate_values[step] for step in range(len(epochs))]
        assert reported == pytest.approx([max(epochs[: i + 1]) for i in range(len(epochs))])
        # what it returns: the delivered (restored) model's figure, scikit-learn's average
        # precision of the best epoch's weights (Keras' epoch metric interpolates 200
        # thresholds, so the two differ by a few hundredths)
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert trial.value == pytest.approx(run.data.metrics["val_final_pr_auc"])
        assert trial.value == pytest.approx(run.data.metrics["objective"])


def test_best_so_far_follows_the_direction_of_the_metric():
    from losslab.search.pruning import BestSoFarPruningCallback

    study = optuna.create_study(direction="minimize")
    trial = study.ask()
    callback = BestSoFarPruningCallback(trial, "val_loss", maximize=False)
    for epoch, value in enumerate([0.5, 0.3, 0.4, float("nan"), 0.2]):
        callback.on_epoch_end(epoch, {"val_loss": value})
    assert study.trials[0].intermediate_values == {0: 0.5, 1: 0.3, 2: 0.3, 3: 0.3, 4: 0.2}


@pytest.mark.slow
def test_sweep_stops_past_max_failure_rate(tmp_path):
    proc = run_cli(
        tmp_path,
        *SWEEP,
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.max_failure_rate=0.0",
        "data.n_minority=100000",
        check=False,
    )
    assert proc.returncode == 1
    assert "max_failure_rate=0.0" in proc.stderr and "data.n_minority=100000" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: 1 trials failed")
    study = load_study(f"sqlite:///{tmp_path}/outputs/sweeps/{STUDY}/optuna.db")
    assert [t.state for t in study.trials] == [TrialState.FAIL]
    sweeps, _ = runs_by_type(tmp_path)
    assert sweeps[0].info.status == "FAILED"


@pytest.mark.slow
def test_submitit_local_runs_jobs_in_subprocesses(tmp_path):
    run_cli(
        tmp_path,
        *SWEEP,
        "hydra/launcher=submitit_local",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2",
    )
    study = load_study(f"sqlite:///{tmp_path}/outputs/sweeps/{STUDY}/optuna.db")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    sweep_dir = tmp_path / "outputs" / "sweeps" / STUDY
    assert list(sweep_dir.glob(".submitit/*/*_result.pkl"))  # run by submitit, not in-process
    sweeps, jobs = runs_by_type(tmp_path)
    assert len(sweeps) == 1
    assert sorted(r.data.tags["optuna.trial_number"] for r in jobs) == ["0", "1"]
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {sweeps[0].info.run_id}


# -- the sweeper's own steps, through a job that is a formula ----------------------------
def sphere(tmp_path, *overrides: str) -> None:
    """A sweep of tests/apps/sphere.py (minimizes x^2 + y^2 + z) in ``tmp_path/sweep``."""
    sweep_toy_app(tmp_path / "sweep", *overrides)


def sphere_study(tmp_path) -> optuna.Study:
    return load_study(f"sqlite:///{tmp_path}/sweep/optuna.db", "sweep")


@pytest.mark.slow
def test_a_failing_custom_search_space_fails_its_trial_and_the_sweep_goes_on(tmp_path):
    sphere(
        tmp_path,
        "hydra.sweeper.custom_search_space=tests.apps.spaces.fails_on_trial_1",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2",
    )
    trials = sphere_study(tmp_path).trials
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.COMPLETE,
        TrialState.COMPLETE,
    ]
    assert trials[1].user_attrs["fail_reason"] == (
        "custom_search_space fails_on_trial_1: ValueError: no space for trial 1"
    )
    assert set(trials[0].params) == {"x", "y", "z"}  # what it suggested is searched


@pytest.mark.slow
def test_a_custom_search_space_failure_past_the_rate_stops_the_sweep_with_nothing_running(
    tmp_path,
):
    with pytest.raises(RuntimeError, match="1 trials failed, more than max_failure_rate=0.0"):
        sphere(
            tmp_path,
            "hydra.sweeper.custom_search_space=tests.apps.spaces.fails_on_trial_1",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.max_failure_rate=0",
        )
    states = [t.state for t in sphere_study(tmp_path).trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]  # none left RUNNING


@pytest.mark.slow
def test_a_job_raising_trial_pruned_ends_its_trial_pruned(tmp_path, caplog):
    sphere(tmp_path, "prune_when_x_above=0", "hydra.sweeper.n_trials=6")
    trials = sphere_study(tmp_path).trials
    for trial in trials:
        pruned = trial.params["x"] > 0
        assert trial.state == (TrialState.PRUNED if pruned else TrialState.COMPLETE)
    assert {t.state for t in trials} == {TrialState.PRUNED, TrialState.COMPLETE}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.slow
def test_multi_objective_study_writes_its_pareto_front(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    sphere(
        tmp_path,
        "objectives=2",
        "hydra.sweeper.direction=[minimize,minimize]",
        "hydra/sweeper/sampler=nsgaii",
        "hydra.sweeper.sampler.population_size=4",
        "hydra.sweeper.n_trials=6",
    )
    study = sphere_study(tmp_path)
    assert len(study.directions) == 2
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 6
    for trial in study.trials:
        x, y = trial.params["x"], trial.params["y"]
        assert trial.values == pytest.approx([x**2 + y**2, (x - 1) ** 2 + y**2])
    results = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    front = {tuple(s["values"]) for s in results.solutions}
    assert front == {tuple(t.values) for t in study.best_trials}
    assert f"Pareto front: {len(front)} trials" in caplog.text


@pytest.mark.slow
def test_a_single_objective_study_writes_the_published_results_file(tmp_path):
    sphere(tmp_path, "hydra.sweeper.n_trials=3", "z=range(0,2)")
    study = sphere_study(tmp_path)
    results = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert results.name == "optuna"
    assert results.best_value == pytest.approx(study.best_value)
    assert dict(results.best_params) == pytest.approx(study.best_params)
    assert {t.params["z"] for t in study.trials} <= {0, 1, 2}


@pytest.mark.slow
def test_two_objectives_end_to_end_each_job_returns_both_and_the_parent_has_the_front(
    tmp_path,
):
    run_cli(
        tmp_path,
        *SWEEP,
        "objective=[val_pr_auc,val_loss]",  # directions: each objective's own
        "hydra/sweeper/sampler=nsgaii",
        "hydra.sweeper.sampler.population_size=4",
        "hydra.sweeper.n_trials=3",
    )
    sweep_dir = tmp_path / "outputs" / "sweeps" / STUDY
    study = load_study(f"sqlite:///{sweep_dir}/optuna.db")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    sweeps, jobs = runs_by_type(tmp_path)
    (parent,) = sweeps
    by_number = {int(r.data.tags["optuna.trial_number"]): r for r in jobs}
    for trial in study.trials:
        metrics = by_number[trial.number].data.metrics
        assert [metrics["objective"], metrics["objective_1"]] == pytest.approx(trial.values)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    path = client.download_artifacts(parent.info.run_id, "optuna/pareto_front.csv", tmp_path)
    front = pd.read_csv(path)
    assert list(front.columns[:3]) == ["number", "val_pr_auc", "val_loss"]
    assert sorted(front.number) == sorted(t.number for t in study.best_trials)
    for row in front.itertuples():
        assert row.mlflow_run_id == by_number[row.number].info.run_id
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "optuna")}
    assert "optuna/pareto_front.png" in artifacts
    assert parent.data.metrics["pareto_front_size"] == len(study.best_trials)
    assert parent.data.tags["optuna.directions"] == "maximize,minimize"
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert len(results.solutions) == len(study.best_trials)


@pytest.mark.slow
def test_a_launcher_that_cannot_submit_fails_its_trials_and_the_parent_with_the_reason(
    tmp_path,
):
    """submitit's Slurm launcher where no cluster answers: the batch never starts."""
    proc = run_cli(tmp_path, *SWEEP, "hydra/launcher=submitit_slurm", check=False)
    assert proc.returncode != 0
    study = load_study(f"sqlite:///{tmp_path}/outputs/sweeps/{STUDY}/optuna.db")
    assert study.trials and {t.state for t in study.trials} == {TrialState.FAIL}
    reason = study.trials[0].user_attrs["fail_reason"]
    assert reason.startswith("the launcher failed: ")
    (parent,), jobs = runs_by_type(tmp_path)
    assert jobs == []
    assert parent.info.status == "FAILED"
    assert parent.data.tags["losslab.error"] in reason


@pytest.mark.slow
def test_a_degenerate_trial_is_marked_and_never_chosen(tmp_path):
    """lr=100 drives the model to one answer for every input: its val_pr_auc is the
    validation prevalence (10 of 40). At lr=1e-9 the model stays at its initial weights, which
    with seed 1 rank validation a little below chance, so the constant is Optuna's best value;
    the trial is marked degenerate (study and run) and the sweep chooses, records and prints
    the other."""
    proc = run_cli(
        tmp_path,
        *SWEEP,
        "hydra/sweeper/sampler=grid",
        "optimizer.lr=choice(1e-9,100)",
        "model.dropout=0.0",
        "imbalance.ratio=1.0",
        "seed=1",
    )
    study = load_study(f"sqlite:///{tmp_path}/outputs/sweeps/{STUDY}/optuna.db")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    (dead,) = [t for t in study.trials if t.params["optimizer.lr"] == 100]
    (real,) = [t for t in study.trials if t.params["optimizer.lr"] == 1e-9]
    assert dead.value == pytest.approx(0.25) and real.value < dead.value
    assert study.best_trial.number == dead.number  # what Optuna alone would report
    assert "validation predictions constant" in dead.user_attrs["degenerate"]
    assert "degenerate" not in real.user_attrs

    results = OmegaConf.load(tmp_path / "outputs" / "sweeps" / STUDY / "optimization_results.yaml")
    assert results.best_params["optimizer.lr"] == 1e-9
    assert f"chosen trial {real.number}: " in proc.stdout
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (parent,), jobs = runs_by_type(tmp_path)
    assert parent.data.tags["optuna.best_trial"] == str(real.number)
    assert parent.data.metrics["best_value"] == pytest.approx(real.value)
    marked = {r.info.run_id: r.data.tags.get(tag_keys.DEGENERATE) for r in jobs}
    assert "constant" in marked[dead.user_attrs["mlflow_run_id"]]
    assert marked[real.user_attrs["mlflow_run_id"]] is None
    assert {r.info.status for r in [parent, *jobs]} == {"FINISHED"}
    assert client.get_run(parent.info.run_id).data.params["optimizer.lr"] == "1e-09"
