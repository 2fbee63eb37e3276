"""``losslab.optuna.MlflowCallback`` on plain ``study.optimize``: one parent per study (the
same one when the study is resumed, and when several processes share its storage), one child
per trial with the trial's params, values, intermediate values, state and failure reason."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import optuna
import pytest
from mlflow import MlflowClient

from losslab.optuna import PARENT_ATTR, MlflowCallback

# each test records into a new store of its own, copied (tests/helpers.py: new_store)
pytestmark = pytest.mark.usefixtures("mlflow_db")

STUDY = "quadratic"


@pytest.fixture(autouse=True)
def _own_tracking_uri():
    """track_in_mlflow sets MLflow's tracking URI for the objective, as optuna-integration's
    does; the tests after these get theirs back."""
    yield
    mlflow.set_tracking_uri(None)


def objective(trial: optuna.Trial) -> float:
    """Pruned when an intermediate value is worse than the median; trial 5 fails."""
    x = trial.suggest_float("x", -10, 10)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    if trial.number == 5:
        raise ValueError("no such x")
    for step in range(4):
        value = (x - 2) ** 2 + (4 - step) + (kind == "b")
        trial.report(value, step)
        mlflow.log_metric("inner", value, step=step)  # into the trial's own run
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")
    return value


def optimize(uri: str, storage: str, n_trials: int, n_jobs: int = 1) -> optuna.Study:
    callback = MlflowCallback(tracking_uri=uri, metric_name="loss")
    study = optuna.create_study(
        study_name=STUDY,
        storage=storage,
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    study.optimize(
        callback.track_in_mlflow()(objective),
        n_trials=n_trials,
        n_jobs=n_jobs,
        callbacks=[callback],
        catch=(ValueError,),
    )
    callback.report(study)
    return study


def recorded(client: MlflowClient, study: optuna.Study) -> tuple[list, list]:
    experiment = client.get_experiment_by_name(STUDY)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def assert_children_match(client: MlflowClient, study: optuna.Study, children: list) -> None:
    (parent_id,) = {r.data.tags["mlflow.parentRunId"] for r in children}
    assert parent_id == study.user_attrs[PARENT_ATTR]
    by_number = {int(r.data.tags["optuna.trial_number"]): r for r in children}
    assert sorted(by_number) == [t.number for t in study.trials]
    for trial in study.trials:
        run = by_number[trial.number]
        assert run.data.params == {k: str(v) for k, v in trial.params.items()}
        steps = client.get_metric_history(run.info.run_id, "intermediate_value")
        assert {m.step: m.value for m in steps} == trial.intermediate_values
        tags = run.data.tags
        if trial.state == optuna.trial.TrialState.PRUNED:
            assert tags["losslab.outcome"] == "pruned" and tags["losslab.pruned"] == "true"
            assert run.info.status == "FINISHED" and run.info.run_name.startswith("[pruned]")
            assert tags["losslab.pruned_reason"].startswith("pruned at step")
        elif trial.state == optuna.trial.TrialState.FAIL:
            assert run.info.status == "FAILED" and tags["losslab.outcome"] == "failed"
            assert tags["losslab.error"] == "ValueError: no such x"
        else:
            assert run.info.status == "FINISHED" and tags["losslab.outcome"] == "finished"
            assert run.data.metrics["loss"] == trial.value
        inner = client.get_metric_history(run.info.run_id, "inner")
        assert len(inner) == len(trial.intermediate_values)


def test_threads_then_a_resumed_study_under_one_parent(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    storage = f"sqlite:///{tmp_path}/optuna.db"
    client = MlflowClient(uri)
    study = optimize(uri, storage, n_trials=12, n_jobs=2)
    parents, children = recorded(client, study)
    assert len(parents) == 1 and len(children) == 12
    states = {t.state for t in study.trials}
    assert optuna.trial.TrialState.PRUNED in states and optuna.trial.TrialState.FAIL in states
    assert_children_match(client, study, children)
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_fail"] == 1
    assert parent.data.tags["best.x"] == str(study.best_params["x"])

    study = optimize(uri, storage, n_trials=3)  # resumed: a new callback, a new study object
    parents, children = recorded(client, study)
    assert [p.info.run_id for p in parents] == [parent.info.run_id]
    assert len(children) == 15
    assert_children_match(client, study, children)
    assert client.get_run(parent.info.run_id).data.metrics["trials_complete"] == sum(
        t.state == optuna.trial.TrialState.COMPLETE for t in study.trials
    )


def test_without_the_decorator_each_trial_gets_its_run_at_its_end(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    callback = MlflowCallback(tracking_uri=uri, metric_name=["a", "b"])
    study = optuna.create_study(study_name=STUDY, directions=["minimize", "maximize"])
    study.optimize(lambda t: (t.suggest_int("n", 0, 3), 1.0), n_trials=3, callbacks=[callback])
    parents, children = recorded(MlflowClient(uri), study)
    assert len(parents) == 1 and len(children) == 3
    assert {frozenset(r.data.metrics) for r in children} == {frozenset({"a", "b"})}


@pytest.mark.slow
def test_two_processes_on_one_storage_share_one_parent(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    storage = f"sqlite:///{tmp_path}/optuna.db"
    script = textwrap.dedent(
        f"""
        from tests.test_optuna_callback import optimize
        optimize({uri!r}, {storage!r}, n_trials=6)
        """
    )
    # the storage's tables made first: Optuna's two create_study calls on a new SQLite file
    # race to make them ("table ... already exists"), before any callback runs
    optuna.storages.RDBStorage(storage)
    procs = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    study = optuna.load_study(study_name=STUDY, storage=storage)
    client = MlflowClient(uri)
    parents, children = recorded(client, study)
    assert len(parents) == 1 and len(children) == 12
    assert_children_match(client, study, children)


def readme_example() -> str:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = readme.split("```python\n")[1:]
    return next(b.split("```")[0] for b in blocks if "from losslab.optuna import" in b)


@pytest.mark.slow
def test_the_readme_example_runs_as_written(tmp_path):
    (tmp_path / "example.py").write_text(readme_example())
    proc = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    study = optuna.load_study(study_name="quadratic", storage=f"sqlite:///{tmp_path}/optuna.db")
    parents, children = recorded(MlflowClient(f"sqlite:///{tmp_path}/mlflow.db"), study)
    assert len(parents) == 1 and len(children) == 20
    assert parents[0].data.metrics["trials_pruned"] > 0


WITHOUT_REPORT = """
import sys
import optuna
from losslab.optuna import MlflowCallback

def objective(trial):
    x = trial.suggest_float("x", 0, 1)
    if trial.number == 2 and sys.argv[2] != "ends":
        raise {"fails": RuntimeError("boom"), "interrupted": KeyboardInterrupt()}[sys.argv[2]]
    return x

study = optuna.create_study(study_name="quadratic", storage=sys.argv[1] + "/optuna.db")
study.optimize(objective, n_trials=4, callbacks=[MlflowCallback(sys.argv[1] + "/mlflow.db")])
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "ending, status, complete",
    [("ends", "FINISHED", 4), ("fails", "FAILED", 2), ("interrupted", "KILLED", 2)],
)
def test_a_script_without_report_ends_its_parent_with_the_report(
    tmp_path, ending, status, complete
):
    """The study's report is on the parent and the parent ended as the process ended."""
    uri = f"sqlite:///{tmp_path}"
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_REPORT, uri, ending], capture_output=True, text=True
    )
    assert (proc.returncode == 0) == (ending == "ends"), proc.stderr
    assert "left RUNNING" not in proc.stderr
    study = optuna.load_study(study_name=STUDY, storage=f"{uri}/optuna.db")
    (parent,), children = recorded(MlflowClient(f"{uri}/mlflow.db"), study)
    assert parent.info.status == status
    assert parent.data.metrics["trials_complete"] == complete == len(children)
    assert all(child.info.status == "FINISHED" for child in children)
