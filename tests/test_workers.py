"""Worker mode's logic in-process: workers (threads here, submitit jobs in a sweep) pulling
trials of one SQLite study with the sweeper's own ask and tell, each trial's job a formula.
They stop at exactly ``n_trials`` finished trials, run a trial queued again by another, and
a worker stopped mid-trial (SIGTERM) leaves its params queued and nothing RUNNING. The whole
command through Hydra and submitit is the slow test at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import cloudpickle
import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from mlflow import MlflowClient
from omegaconf import OmegaConf
from optuna.trial import TrialState

from hydra_plugins.losslab_optuna_sweeper import _workers as workers
from hydra_plugins.losslab_optuna_sweeper import checks
from hydra_plugins.losslab_optuna_sweeper._impl import SweepFailed
from losslab.process import Terminated
from losslab.search.settings import SettingsError
from losslab.search.worker import INFRASTRUCTURE_ATTR
from losslab.tracking import tag_keys
from tests.helpers import STUDY, SWEEP, load_study, run_cli, runs_by_type, start_cli
from tests.test_sweeper_logic import study_of, sweeper

POLL_S = 0.05


def x_of(overrides: list[str]) -> float:
    return next(float(o.split("=", 1)[1]) for o in overrides if o.startswith("x="))


def answer(outcome) -> JobReturn:
    if isinstance(outcome, BaseException):
        return JobReturn(status=JobStatus.FAILED, _return_value=outcome)
    return JobReturn(status=JobStatus.COMPLETED, _return_value=outcome)


def setup_study(tmp_path, **options):
    """The sweeper as the command sets it up (study made, search space read); its workers
    are built from it and pickled as submitit sends them (cloudpickle)."""
    impl = sweeper(tmp_path, None, workers=2, **options)
    space = checks.sweep_settings(impl.config.hydra.sweeper, [])
    impl._study(tmp_path / "sweep", space)
    return impl, space


def worker(impl, space, index: int) -> workers.Worker:
    return cloudpickle.loads(cloudpickle.dumps(workers.Worker(impl, space, index)))


def run_workers(impl, space, jobs: list) -> list:
    """Each job function in a worker of its own, at once; what each worker raised."""
    errors: list = [None] * len(jobs)

    def run(i: int) -> None:
        try:
            worker(impl, space, i).work(jobs[i], poll_s=POLL_S)
        except BaseException as err:
            errors[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def states(study: optuna.Study) -> dict[TrialState, int]:
    counts: dict[TrialState, int] = {}
    for t in study.trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    return counts


def value_job(overrides, number):
    """A trial whose value is its x; pruned when x is small."""
    x = x_of(overrides)
    time.sleep(0.02)
    return answer(optuna.TrialPruned() if x < 0.3 else x)


def test_workers_stop_at_exactly_n_trials_each_told_its_own_value(tmp_path):
    impl, space = setup_study(tmp_path, n_trials=9)
    assert run_workers(impl, space, [value_job] * 3) == [None] * 3
    study = study_of(impl)
    assert len(study.trials) == 9  # no worker took a place past n_trials
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    for t in study.trials:
        assert (t.state == TrialState.PRUNED) == (t.params["x"] < 0.3)
        if t.state == TrialState.COMPLETE:
            assert t.value == t.params["x"]
    # each worker draws with a seed of its own: no two trials share their point
    assert len({t.params["x"] for t in study.trials}) == 9


def test_a_trial_failed_by_its_store_is_run_again_by_a_worker_and_not_counted(tmp_path):
    impl, space = setup_study(tmp_path, n_trials=4)
    store_away = RuntimeError("the tracking store did not answer")
    store_away.infrastructure = True
    failed_once = threading.Event()

    def flaky(overrides, number):
        if not failed_once.is_set():
            failed_once.set()
            time.sleep(0.2)  # the other worker meanwhile finishes the rest and waits
            return answer(store_away)
        return value_job(overrides, number)

    assert run_workers(impl, space, [flaky, value_job]) == [None, None]
    study = study_of(impl)
    infra = [t for t in study.trials if t.user_attrs.get(INFRASTRUCTURE_ATTR)]
    assert len(infra) == 1 and infra[0].state == TrialState.FAIL
    finished = [t for t in study.trials if t not in infra]
    assert len(finished) == 4
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in finished)
    assert infra[0].params["x"] in [t.params["x"] for t in finished]  # its params ran again


def test_a_grid_point_queued_again_runs_after_every_point_was_drawn(tmp_path):
    """The grid sampler says it is done once every point has been tried, a failed one too:
    the worker that tells the last point's store failure must still run it again."""
    grid = {"_target_": "optuna.samplers.GridSampler", "_partial_": True, "seed": 42}
    impl = sweeper(tmp_path, None, workers=1, sampler=grid, n_trials=10)
    impl.config.hydra.sweeper.params = {"x": "choice(0.2,0.4,0.6)"}
    space = checks.sweep_settings(impl.config.hydra.sweeper, [])
    impl._study(tmp_path / "sweep", space)
    impl._cap_to_grid()  # as the sweep does before it submits the workers
    store_away = RuntimeError("the tracking store did not answer")
    store_away.infrastructure = True
    calls = []

    def last_point_fails_once(overrides, number):
        calls.append(number)
        return answer(store_away) if len(calls) == 3 else value_job(overrides, number)

    worker(impl, space, 0).work(last_point_fails_once, poll_s=POLL_S)
    study = study_of(impl)
    ran = [t for t in study.trials if not t.user_attrs.get(INFRASTRUCTURE_ATTR)]
    assert sorted(t.params["x"] for t in ran) == [0.2, 0.4, 0.6]  # each point once
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in ran)
    assert TrialState.WAITING not in states(study)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR2], ids=["TERM", "USR2"])
def test_a_worker_stopped_by_sigterm_queues_its_trial_for_the_next_worker(
    tmp_path, signum, monkeypatch
):
    """SIGTERM: Slurm's preemption and scancel; USR2: what submitit has Slurm send before a
    time limit or a preemption, the one signal on which a worker asks to be requeued."""
    requeued = []
    monkeypatch.setattr(workers, "requeue_on_slurm", lambda: requeued.append(True))
    impl, space = setup_study(tmp_path, n_trials=3)

    def terminated(overrides, number):
        os.kill(os.getpid(), signum)
        time.sleep(10)  # the signal ends this at once
        raise AssertionError("SIGTERM did not stop the job")

    first = worker(impl, space, 0)
    with pytest.raises(Terminated):
        first.work(terminated, poll_s=POLL_S)  # in the main thread, where signals land
    study = study_of(impl)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.WAITING]
    stopped, queued = study.trials
    assert stopped.user_attrs[INFRASTRUCTURE_ATTR] is True
    assert signal.Signals(signum).name in stopped.user_attrs["fail_reason"]
    assert queued.system_attrs["fixed_params"] == stopped.params
    assert signal.getsignal(signum) is signal.SIG_DFL  # the handler given back
    assert requeued == ([True] if signum == signal.SIGUSR2 else [])  # scancel: not again

    worker(impl, space, 1).work(value_job, poll_s=POLL_S)
    study = study_of(impl)
    assert TrialState.RUNNING not in states(study)
    rerun = study.trials[1]
    assert rerun.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert rerun.params == stopped.params
    assert sum(t.state != TrialState.FAIL for t in study.trials) == 3


def test_a_signal_a_job_swallowed_still_queues_its_trial_and_ends_the_worker(tmp_path):
    """psycopg cancels its query on the signal's exception, and Optuna's storage reports a
    commit error: the job ends with an ordinary error, and the trial is still not its own."""
    impl, space = setup_study(tmp_path, n_trials=2)

    def swallowed(overrides, number):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
        except KeyboardInterrupt:
            return answer(RuntimeError("StorageInternalError: An exception is raised during"))
        raise AssertionError("SIGTERM did not stop the job")

    with pytest.raises(Terminated):
        worker(impl, space, 0).work(swallowed, poll_s=POLL_S)  # not on to another trial
    stopped, queued = study_of(impl).trials
    assert stopped.state == TrialState.FAIL and stopped.user_attrs[INFRASTRUCTURE_ATTR]
    assert queued.state == TrialState.WAITING


def test_failures_past_the_rate_end_the_workers_with_nothing_running(tmp_path):
    impl, space = setup_study(tmp_path, n_trials=6, max_failure_rate=0.3)

    def broken(overrides, number):
        return answer(RuntimeError("the model diverged"))

    errors = run_workers(impl, space, [broken, broken])
    assert all(isinstance(e, SweepFailed) for e in errors)
    assert "the model diverged" in str(errors[0])
    study = study_of(impl)
    assert set(states(study)) == {TrialState.FAIL}
    assert len(study.trials) <= 4  # each stops once more than 0.3 of 6 failed


def test_a_job_function_that_breaks_fails_its_trial_and_the_worker(tmp_path):
    impl, space = setup_study(tmp_path, n_trials=2)

    def bug(overrides, number):
        raise KeyError("no such key")

    with pytest.raises(KeyError):
        worker(impl, space, 0).work(bug, poll_s=POLL_S)
    (trial,) = study_of(impl).trials
    assert trial.state == TrialState.FAIL
    assert "KeyError" in trial.user_attrs["fail_reason"]


def test_each_finished_trial_prints_one_line():
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.81234))
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED))
    failed = optuna.trial.create_trial(
        state=TrialState.FAIL,
        user_attrs={"fail_reason": "OSError: store away", INFRASTRUCTURE_ATTR: True},
    )
    study.add_trial(failed)
    lines = [workers.progress(t, 2, 5) for t in study.trials]
    assert lines == [
        "trial 0 COMPLETE 0.8123 (2/5 finished)",
        "trial 1 PRUNED (2/5 finished)",
        "trial 2 FAIL (OSError: store away, queued again) (2/5 finished)",
    ]


SLURM = {"_target_": "hydra_plugins.losslab_slurm_launcher.slurm_launcher.SlurmLauncher"}
LOCAL = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"}
BASIC = {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}


@pytest.mark.parametrize(
    ("storage", "shown"),
    [
        (None, "storage=null (a SQLite file in the sweep folder)"),
        ("sqlite:////nfs/study.db", "storage=sqlite:////nfs/study.db"),
        ("journal:/nfs/study.log", "storage=journal:/nfs/study.log"),
    ],
)
def test_workers_on_slurm_refuse_a_file_storage_naming_it(storage, shown):
    sweeper_node = OmegaConf.create({"workers": 4, "storage": storage})
    with pytest.raises(SettingsError) as refused:
        checks.worker_launcher(sweeper_node, SLURM)
    message = str(refused.value)
    assert message.startswith(f"hydra.sweeper.{shown}: ")
    assert "NFS" in message and "postgresql" in message and "\n" not in message


def test_worker_storage_rules_allow_what_is_safe():
    server = OmegaConf.create({"workers": 4, "storage": "postgresql+psycopg://u@db/optuna"})
    checks.worker_launcher(server, SLURM)
    checks.worker_launcher(OmegaConf.create({"workers": 2, "storage": None}), LOCAL)  # one node
    checks.worker_launcher(OmegaConf.create({"workers": 0, "storage": None}), SLURM)  # batch
    with pytest.raises(SettingsError, match="workers=2: workers are submitit jobs"):
        checks.worker_launcher(OmegaConf.create({"workers": 2}), BASIC)
    with pytest.raises(SettingsError, match="workers=-1"):
        checks.workers(-1)
    with pytest.raises(SettingsError, match="detach=true: a sweep returns at once only with"):
        checks.workers(0, detach=True)
    with pytest.raises(SettingsError, match="trials_per_run=2: a cap of batch mode"):
        checks.workers(3, per_run=2)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--workers", "3", "data=x"],
            ["hydra/launcher=submitit_local", "hydra.sweeper.workers=3", "data=x"],
        ),
        (
            ["data=x", "--workers=2"],
            ["hydra/launcher=submitit_local", "hydra.sweeper.workers=2", "data=x"],
        ),
        (
            ["--workers", "4", "hydra/launcher=slurm_gpu"],
            ["hydra.sweeper.workers=4", "hydra/launcher=slurm_gpu"],
        ),
        (["data=x"], ["data=x"]),
    ],
)
def test_the_sweep_commands_workers_option(args, expected):
    from losslab.command import worker_options

    assert worker_options(args) == expected


@pytest.mark.parametrize("args", [["--workers"], ["--workers", "two"], ["--workers=0"]])
def test_a_workers_option_that_is_no_count_is_refused_in_one_line(args, capsys):
    from losslab.command import main

    with pytest.raises(SystemExit) as exited:
        main(["sweep", *args])
    assert exited.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: --workers=") and line.endswith("give a number of workers >= 1")


# -- the whole command -------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_db")
def test_two_submitit_workers_finish_the_study_under_one_parent(tmp_path):
    proc = run_cli(
        tmp_path,
        *SWEEP,
        "hydra/launcher=submitit_local",
        "hydra.sweeper.workers=2",
        "hydra.sweeper.n_trials=4",
    )
    study = load_study(f"sqlite:///{tmp_path}/outputs/sweeps/{STUDY}/optuna.db")
    assert len(study.trials) == 4
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    progress = [ln for ln in proc.stdout.splitlines() if ln.startswith("trial ")]
    assert len(progress) == 4 and progress[-1].endswith("(4/4 finished)")
    assert f"study {STUDY}: 2 workers (jobs " in proc.stdout
    submitted = tmp_path / "outputs" / "sweeps" / STUDY / ".submitit"
    assert len(list(submitted.glob("*/*_result.pkl"))) == 2  # two jobs ran the four trials
    sweeps, jobs = runs_by_type(tmp_path)
    assert [s.info.status for s in sweeps] == ["FINISHED"]
    assert sorted(r.data.tags["optuna.trial_number"] for r in jobs) == ["0", "1", "2", "3"]
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {sweeps[0].info.run_id}
    assert {r.info.status for r in jobs} == {"FINISHED"}


@pytest.mark.slow
def test_workers_on_slurm_with_the_default_sqlite_file_are_refused_before_any_run(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "losslab", "sweep", "--workers", "2", "hydra/launcher=slurm_gpu"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: hydra.sweeper.storage=null (a SQLite file in the sweep folder)")
    assert "NFS" in line
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "outputs").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_db")
def test_a_worker_sent_sigterm_mid_trial_leaves_its_trial_to_the_other_worker(tmp_path):
    from tests.test_faults import STUDY_DB, _wait_for_running_trial

    overrides = ["hydra/launcher=submitit_local", "hydra.sweeper.workers=2"]
    proc = start_cli(tmp_path, *SWEEP, *overrides, "hydra.sweeper.n_trials=3", "trainer.epochs=25")
    _wait_for_running_trial(tmp_path, proc)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    study = load_study(f"sqlite:///{tmp_path}/{STUDY_DB}")
    running = next(t for t in study.trials if "mlflow_run_id" in t.user_attrs)
    run_id = running.user_attrs["mlflow_run_id"]
    token = client.get_run(run_id).data.tags[tag_keys.PROCESS]  # host:pid:start of its worker
    os.kill(int(token.split(":")[-2]), signal.SIGTERM)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output

    study = load_study(f"sqlite:///{tmp_path}/{STUDY_DB}")
    stopped = study.trials[running.number]
    assert stopped.state == TrialState.FAIL and stopped.user_attrs[INFRASTRUCTURE_ATTR]
    assert "SIGTERM" in stopped.user_attrs["fail_reason"]
    others = [t for t in study.trials if t.number != running.number]
    assert len(others) == 3
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in others)
    assert stopped.params in [t.params for t in others]  # its params ran again
    assert client.get_run(run_id).info.status == "KILLED"
    sweeps, jobs = runs_by_type(tmp_path)
    assert [s.info.status for s in sweeps] == ["FINISHED"]
    assert sorted(r.info.status for r in jobs) == ["FINISHED"] * 3 + ["KILLED"]


class QueuedJob:
    """A submitit job as Slurm shows one it requeued: pending until cancelled."""

    def __init__(self, state: str) -> None:
        self.state = state

    def done(self) -> bool:
        return self.state not in ("PENDING", "REQUEUED", "RUNNING")

    def cancel(self, check: bool = True) -> None:
        self.state = "CANCELLED"


def test_once_the_study_is_done_a_worker_still_queued_is_cancelled_not_awaited():
    study = optuna.create_study()
    for value in (0.5, 0.25):
        study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), value)
    requeued, ended, running = QueuedJob("PENDING"), QueuedJob("COMPLETED"), QueuedJob("RUNNING")
    assert workers.cancel_queued([running]) == [] and running.state == "RUNNING"
    assert workers.watch(study, [ended, requeued], n_trials=2, poll_s=0) == [requeued]
    assert requeued.state == "CANCELLED"


def test_status_counts_each_kind_of_trial_and_names_the_best():
    from losslab.search import status

    study = optuna.create_study(direction="maximize", study_name="s")
    study.set_user_attr(status.N_TRIALS_ATTR, 5)
    add = study.add_trial
    add(
        optuna.trial.create_trial(
            state=TrialState.COMPLETE,
            value=0.5,
            params={"x": 0.5},
            distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
        )
    )
    add(
        optuna.trial.create_trial(
            state=TrialState.COMPLETE,
            value=0.9,
            params={"x": 0.9},
            distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
        )
    )
    add(optuna.trial.create_trial(state=TrialState.PRUNED))
    add(optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={INFRASTRUCTURE_ATTR: True}))
    study.enqueue_trial({"x": 0.1})
    study.ask()  # the queued one, now running
    assert status.summary(study) == [
        "study s: 3 of 5 finished; 2 complete, 1 pruned, 0 failed, 1 running, 0 queued, 1 requeued",
        "best so far: trial 1: 0.9; x=0.9",
    ]
    assert not status.done(study)


def test_a_detached_parent_is_remembered_without_a_secret_in_its_uri():
    from losslab.search import status

    study = optuna.create_study()
    status.remember_parent(study, "abc", "http://user:s3cret@mlflow:5000")
    assert study.user_attrs[status.PARENT_ATTR] == {"run_id": "abc", "tracking_uri": None}
    status.remember_parent(study, "abc", "sqlite:////data/mlflow.db")
    assert study.user_attrs[status.PARENT_ATTR]["tracking_uri"] == "sqlite:////data/mlflow.db"


@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_db")
def test_a_detached_sweep_returns_at_once_and_status_ends_its_parent_when_done(tmp_path):
    proc = run_cli(
        tmp_path,
        *SWEEP,
        "hydra/launcher=submitit_local",
        "hydra.sweeper.workers=2",
        "hydra.sweeper.detach=true",
        "hydra.sweeper.n_trials=3",
    )
    assert f"follow it with: losslab sweep status {STUDY} --storage sqlite:///" in proc.stdout
    sweeps, _ = runs_by_type(tmp_path)
    assert [s.info.status for s in sweeps] == ["RUNNING"]  # the workers record under it

    def status() -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "losslab", "sweep", "status", STUDY]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    deadline = time.monotonic() + 600
    while f"study {STUDY}: 3 of 3 finished" not in (told := status()).stdout:
        assert told.returncode == 0, told.stderr
        assert time.monotonic() < deadline, told.stdout
        time.sleep(3)
    assert "ended FINISHED" in told.stdout
    study = load_study(f"sqlite:///{tmp_path}/outputs/sweeps/{STUDY}/optuna.db")
    assert len(study.trials) == 3
    sweeps, jobs = runs_by_type(tmp_path)
    assert [s.info.status for s in sweeps] == ["FINISHED"]
    assert "best_value" in sweeps[0].data.metrics  # the study's report, written by status
    assert len(jobs) == 3 and {r.info.status for r in jobs} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {sweeps[0].info.run_id}
    assert "ended FINISHED" not in status().stdout  # once


def detached_study(tmp_path, n_trials: int):
    """A SQLite study where ``losslab sweep status`` looks for ``s``, with ``n_trials`` and a
    RUNNING parent run in a new store remembered; its client, parent id and study."""
    from losslab.search import status
    from losslab.search.storage import open_storage
    from tests.helpers import new_store

    uri = new_store(tmp_path)
    client = MlflowClient(uri)
    parent = client.create_run(client.create_experiment("e")).info.run_id
    storage = f"sqlite:///{tmp_path}/outputs/sweeps/s/optuna.db"
    study = optuna.create_study(study_name="s", storage=open_storage(storage), direction="maximize")
    study.set_user_attr(status.N_TRIALS_ATTR, n_trials)
    status.remember_parent(study, parent, uri)
    return client, parent, study


def test_status_ends_a_done_studys_parent_once_with_its_report(tmp_path, monkeypatch, capsys):
    from losslab.search import status

    client, parent, study = detached_study(tmp_path, n_trials=2)
    study.enqueue_trial({"x": 0.25})
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study.tell(trial, 0.25)
    monkeypatch.chdir(tmp_path)

    assert status.main(["s"]) == 0  # one of two: the parent goes on
    assert "study s: 1 of 2 finished" in capsys.readouterr().out
    assert client.get_run(parent).info.status == "RUNNING"
    study.tell(study.ask(), 0.5)
    assert status.main(["s"]) == 0
    out = capsys.readouterr().out
    assert f"MLflow parent run {parent} ended FINISHED" in out
    assert "best so far: trial 1: 0.5" in out
    run = client.get_run(parent)
    assert run.info.status == "FINISHED" and run.data.metrics["best_value"] == 0.5
    assert status.main(["s"]) == 0
    assert "ended FINISHED" not in capsys.readouterr().out  # once

    assert status.main(["nope"]) == 2
    assert capsys.readouterr().err.startswith("error: nope: no such study in sqlite:///")


def test_status_ends_the_parent_failed_once_every_worker_died_short_of_n_trials(
    tmp_path, monkeypatch, capsys
):
    from losslab.search import status

    client, parent, study = detached_study(tmp_path, n_trials=3)
    study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), 0.25)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    status.remember_workers(study, "local", [worker.pid])
    monkeypatch.chdir(tmp_path)

    assert status.main(["s"]) == 0  # a worker runs: the parent goes on
    assert client.get_run(parent).info.status == "RUNNING"
    worker.kill()
    worker.wait()
    assert status.main(["s"]) == 1
    out = capsys.readouterr().out
    assert "1 of 3 finished" in out and "; 0 workers alive" in out
    assert f"MLflow parent run {parent} ended FAILED with the study's report" in out
    run = client.get_run(parent)
    assert run.info.status == "FAILED" and run.data.metrics["best_value"] == 0.25
    assert status.main(["s"]) == 1
    assert "ended FAILED" not in capsys.readouterr().out  # once


def test_status_counts_the_local_workers_still_running(tmp_path):
    from losslab.search import status

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        study = optuna.create_study(study_name="s")
        status.remember_workers(study, "local", [running.pid, ended.pid])
        assert status.summary(study)[0].endswith("; 1 workers alive")
        elsewhere = {**study.user_attrs[status.WORKERS_ATTR], "host": "another-host"}
        assert status.workers_alive(elsewhere) is None  # not this machine's to tell
    finally:
        running.kill()
        running.wait()
    assert status.summary(study)[0].endswith("; 0 workers alive")


def test_a_job_that_exits_the_worker_leaves_its_params_queued(tmp_path):
    impl, space = setup_study(tmp_path, n_trials=2)

    def exits(overrides, number):
        raise SystemExit(-1)  # as submitit's handler does once it requeued the job

    with pytest.raises(SystemExit):
        worker(impl, space, 0).work(exits, poll_s=POLL_S)
    assert [t.state for t in study_of(impl).trials] == [TrialState.FAIL, TrialState.WAITING]
