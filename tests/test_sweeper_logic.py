"""The sweeper's own logic in-process, with a stub launcher standing in for Hydra's: how it
tells Optuna each job's outcome, sizes its batches, queues a lost job's trial again, and
leaves no trial RUNNING when the launcher fails. The whole command through Hydra is
tests/test_sweep.py (slow); these run in seconds."""

from __future__ import annotations

import math

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.trial import TrialState

from hydra_plugins.losslab_optuna_sweeper._impl import OptunaSweeperImpl, SweepFailed
from losslab.search.heartbeat import JobLost
from tests.helpers import needs_postgres


class StubLauncher:
    """Answers each job with the next scripted outcome: a value, or an exception the job
    raised; records the overrides of every batch."""

    def __init__(self, outcomes: list) -> None:
        self.outcomes = list(outcomes)
        self.batches: list[list[list[str]]] = []

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        self.batches.append([list(o) for o in job_overrides])
        return [self._answer(self.outcomes.pop(0)) for _ in job_overrides]

    @staticmethod
    def _answer(outcome) -> JobReturn:
        if isinstance(outcome, BaseException):
            return JobReturn(status=JobStatus.FAILED, _return_value=outcome)
        return JobReturn(status=JobStatus.COMPLETED, _return_value=outcome)


class BrokenLauncher:
    def launch(self, job_overrides, initial_job_idx: int):
        raise OSError("the cluster said no")


def sweeper(tmp_path, launcher, **options) -> OptunaSweeperImpl:
    settings = {
        "sampler": {"_target_": "optuna.samplers.RandomSampler", "seed": 0},
        "pruner": None,
        "direction": "maximize",
        "study_name": "logic",
        "storage": f"sqlite:///{tmp_path / 'optuna.db'}",
        "n_trials": 4,
        "n_jobs": 2,
        "load_if_exists": True,
        "max_failure_rate": 1.0,
        "heartbeat_interval": None,
        **options,
    }
    impl = OptunaSweeperImpl(**settings)
    sweep_node = {**settings, "params": {"x": "interval(0, 1)"}}
    impl.config = OmegaConf.create(
        {"hydra": {"sweeper": sweep_node, "sweep": {"dir": str(tmp_path / "sweep")}}}
    )
    impl.launcher = launcher
    return impl


def study_of(impl: OptunaSweeperImpl) -> optuna.Study:
    return optuna.load_study(study_name=impl.study_name, storage=impl.storage_url)


def test_each_outcome_ends_its_trial_as_optuna_would(tmp_path):
    outcomes = [0.5, optuna.TrialPruned(), RuntimeError("boom"), math.nan]
    impl = sweeper(tmp_path, StubLauncher(outcomes))
    impl.sweep([])
    trials = study_of(impl).trials
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
        TrialState.FAIL,
    ]
    assert trials[0].value == 0.5
    assert trials[2].user_attrs["fail_reason"] == "RuntimeError: boom"
    assert trials[3].user_attrs["fail_reason"] == "job returned nan"


def test_batches_are_n_jobs_wide_and_stop_at_n_trials_or_this_commands_share(tmp_path):
    launcher = StubLauncher([0.1] * 5)
    sweeper(tmp_path, launcher, n_trials=5, n_jobs=2).sweep([])
    assert [len(b) for b in launcher.batches] == [2, 2, 1]
    second = StubLauncher([0.2] * 5)
    sweeper(tmp_path, second, n_trials=9, n_jobs=2, trials_per_run=3).sweep([])
    assert [len(b) for b in second.batches] == [2, 1]
    assert len(study_of(sweeper(tmp_path, None)).trials) == 8
    drawn = [o for batch in launcher.batches for job in batch for o in job if o.startswith("x=")]
    assert len(set(drawn)) == 5  # each trial its own params, passed as an override


def test_a_lost_job_is_queued_again_with_its_params_when_retries_are_allowed(tmp_path):
    lost = JobLost("Slurm job 7_0 ended CANCELLED without a result")
    launcher = StubLauncher([lost, 0.3, 0.4])
    impl = sweeper(tmp_path, launcher, n_trials=3, n_jobs=1, heartbeat_interval=60, max_retry=1)
    impl.sweep([])
    trials = study_of(impl).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    first, retried = launcher.batches[0][0], launcher.batches[1][0]
    assert [o for o in first if o.startswith("x=")] == [o for o in retried if o.startswith("x=")]


def test_a_launcher_that_fails_leaves_no_trial_running(tmp_path):
    impl = sweeper(tmp_path, BrokenLauncher())
    with pytest.raises(OSError, match="the cluster said no"):
        impl.sweep([])
    trials = study_of(impl).trials
    assert trials and all(t.state == TrialState.FAIL for t in trials)
    assert "the launcher failed: OSError" in trials[0].user_attrs["fail_reason"]


def test_too_many_failures_end_the_sweep_with_the_last_reason(tmp_path):
    launcher = StubLauncher([RuntimeError("bad data")] * 4)
    impl = sweeper(tmp_path, launcher, max_failure_rate=0.25)
    with pytest.raises(SweepFailed, match="last failure: RuntimeError: bad data"):
        impl.sweep([])
    assert len(launcher.batches) == 1  # stopped after the first batch of two failures


def test_a_studys_identity_keeps_no_secret_and_ignores_one():
    """The identity is stored in the study, read by every worker and by Optuna Dashboard."""
    from losslab.search.study import fingerprint, identity

    def sweep(token: str, password: str):
        overrides = [
            f"+tags.api_token={token}",
            f"tracking.uri=http://bob:{password}@mlflow:5000",
            "loss=focal",
        ]
        return OmegaConf.create(
            {
                "hydra": {"sweeper": {"params": {"x": "interval(0, 1)"}}},
                "data": {"source": "digits_pair", "path": f"postgresql://u:{password}@db/t"},
                "objective": "val_pr_auc",
                "direction": "maximize",
            }
        ), overrides

    config, overrides = sweep("ghp_first0token", "hunter2pw")
    config.hydra.overrides = {"task": overrides}
    text = str(identity(config))
    assert "ghp_first0token" not in text and "hunter2pw" not in text
    assert "loss=focal" in text
    other, other_overrides = sweep("ghp_second1token", "0therpass")
    other.hydra.overrides = {"task": other_overrides}
    assert fingerprint(identity(other)) == fingerprint(identity(config))


@needs_postgres
@pytest.mark.slow
def test_a_study_outlives_its_databases_connections_being_cut(postgres_url):
    """What a restart of PostgreSQL does to the pooled connections (each one closed by the
    server): the next write gets a fresh connection instead of failing the sweep."""
    import psycopg

    from losslab.search.storage import open_storage

    storage = open_storage(postgres_url)
    study = optuna.create_study(study_name="restart", storage=storage, load_if_exists=True)
    study.tell(study.ask(), 0.1)
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as admin:
        cut = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    assert cut, "the storage held no connection to cut"
    study.tell(study.ask(), 0.2)
    assert [t.value for t in study.trials] == [0.1, 0.2]


def _store_away():
    from losslab.tracking.reachable import StoreUnreachable

    return StoreUnreachable("tracking.uri=http://127.0.0.1:5000: no MLflow server answers")


def _disk_full():
    from losslab.tracking.disk import DiskFull

    return DiskFull("/nowhere/outputs/runs/1/model.keras")


@pytest.mark.parametrize("fault", [_store_away, _disk_full], ids=["store away", "disk full"])
def test_a_trial_its_store_could_not_record_is_run_again_and_not_counted(tmp_path, fault):
    away = fault()
    launcher = StubLauncher([0.3, away, 0.4, 0.5])
    impl = sweeper(tmp_path, launcher, n_trials=3, n_jobs=1)
    impl.sweep([])
    trials = study_of(impl).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL] + [
        TrialState.COMPLETE
    ] * 2
    assert trials[1].user_attrs["infrastructure"] is True
    assert trials[2].params == trials[1].params  # its params ran again
    assert len(launcher.batches) == 4  # three trials counted, the lost one on top


def test_a_store_away_for_several_trials_ends_the_sweep_with_params_queued(tmp_path):
    from losslab.tracking.reachable import StoreUnreachable

    away = StoreUnreachable("tracking.uri=http://127.0.0.1:5000: no MLflow server answers")
    impl = sweeper(tmp_path, StubLauncher([away] * 3), n_trials=5, n_jobs=1)
    with pytest.raises(SweepFailed, match="3 trials in a row could not be recorded"):
        impl.sweep([])
    study = study_of(impl)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3 + [TrialState.WAITING]
    assert impl._remaining(study) == 5
