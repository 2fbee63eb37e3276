"""Faults caused for real: a tracking server that goes away, processes killed with SIGKILL
and interrupted with SIGINT, NaN losses in a sweep, and four parallel jobs on SQLite."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import keras
import pytest
from mlflow import MlflowClient
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from losslab import data
from losslab.config import to_objects
from losslab.tracking import tag_keys
from losslab.train import train
from tests.helpers import (
    REPO,
    STUDY,
    SWEEP,
    FlakyProxy,
    MlflowServer,
    compose,
    load_study,
    run_cli,
    runs_by_type,
)

pytestmark = pytest.mark.slow  # real servers, signals and killed subprocesses

STUDY_DB = f"outputs/sweeps/{STUDY}/optuna.db"
# the killed sweeps train for 500 epochs to still be running when killed; the resumed one
# trains the debug epochs, a change of the study's sweep that must be allowed explicitly
RESUME_SHORTER = "hydra.sweeper.allow_changed_study=true"


@pytest.fixture
def fast_failing_http(monkeypatch):
    """MLflow's client retries a refused connection for minutes by default; fail at once so
    the losslab writer's own retry loop is what is tested."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


class Outage(keras.callbacks.Callback):
    """Stops the server after ``down_after`` epochs; starts it again after ``up_after``."""

    def __init__(self, server: MlflowServer, down_after: int, up_after: int | None) -> None:
        super().__init__()
        self.server, self.down_after, self.up_after = server, down_after, up_after
        self.was_down = False

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch + 1 == self.down_after:
            self.server.stop()
            with pytest.raises(OSError):
                urllib.request.urlopen(f"{self.server.url}/health", timeout=2)
            self.was_down = True
        if self.up_after is not None and epoch + 1 == self.up_after:
            self.server.start()


def steps_per_epoch(result, batch_size: int) -> int:
    return math.ceil(len(result.dataset.x_train) / batch_size)


def assert_every_point_stored(client: MlflowClient, run_id: str, epochs: int, steps: int):
    batch = client.get_metric_history(run_id, "batch/loss")
    assert len(batch) == epochs * steps
    assert sorted(m.step for m in batch) == list(range(epochs * steps))
    assert len(client.get_metric_history(run_id, "val_loss")) == epochs


def test_server_outage_queues_points_until_the_server_returns(tmp_path, fast_failing_http):
    server = MlflowServer(tmp_path / "server-data")
    server.folder.mkdir()
    url = server.start()
    try:
        outage = Outage(server, down_after=1, up_after=3)
        cfg = compose(
            tmp_path,
            "tracking=server",
            f"tracking.uri={url}",
            "trainer.epochs=5",
            "trainer.batch_size=16",
            "tracking.log_model=false",
        )
        result = train(cfg, extra_callbacks=[outage])
        assert outage.was_down
        client = MlflowClient(url)
        run = client.get_run(result.run_id)
        assert run.info.status == "FINISHED"
        assert_every_point_stored(client, result.run_id, 5, steps_per_epoch(result, 16))
        assert not (tmp_path / "out" / "mlflow_spill").exists()
    finally:
        server.stop()


def test_store_that_never_returns_spills_and_replay_restores_the_run(
    tmp_path, fast_failing_http, monkeypatch
):
    """Meanwhile another host's run ends the spilling run KILLED (its heartbeat stopped), and
    a first replay breaks off after logging the model: the replay run again restores FINISHED
    without that verdict, every point, the model once, and a third records nothing twice."""
    from losslab.tracking import replay as replaying
    from losslab.tracking import stale

    server = MlflowServer(tmp_path / "server-data")
    server.folder.mkdir()
    url = server.start()
    try:
        outage = Outage(server, down_after=1, up_after=None)
        cfg = compose(
            tmp_path,
            "tracking=server",
            f"tracking.uri={url}",
            "trainer.epochs=3",
            "trainer.batch_size=16",
            "tracking.offline_after_s=2",
            "tracking.log_model=true",
        )
        result = train(cfg, extra_callbacks=[outage])  # training ends without an exception
        spill = tmp_path / "out" / "mlflow_spill"
        assert (spill / "spill.jsonl").is_file()

        server.start()
        client = MlflowClient(url)
        client.set_tag(result.run_id, tag_keys.PROCESS, "elsewhere:1:1")  # another host's
        client.set_tag(result.run_id, tag_keys.HEARTBEAT, "0")
        experiment = client.get_run(result.run_id).info.experiment_id
        assert stale.end_dead_runs(client, experiment, 600) == [result.run_id]

        def broken(*args):
            raise ConnectionError("store went away during replay")

        monkeypatch.setitem(replaying.WRITERS, "status", broken)
        with pytest.raises(ConnectionError):
            replaying.replay(spill)
        monkeypatch.undo()
        replay = [sys.executable, "-m", "losslab.tracking.replay", str(spill)]
        proc = subprocess.run(replay, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "status FINISHED" in proc.stdout
        run = client.get_run(result.run_id)
        assert run.info.status == "FINISHED"
        assert "losslab.error" not in run.data.tags
        assert tag_keys.ENDED_AS_DEAD not in run.data.tags
        assert_every_point_stored(client, result.run_id, 3, steps_per_epoch(result, 16))
        assert run.data.metrics["test_pr_auc"] == pytest.approx(result.metrics["test_pr_auc"])
        assert run.data.tags["losslab.objective"] == "val_pr_auc"
        arts = {
            a.path for d in ("plots", "evaluation") for a in client.list_artifacts(result.run_id, d)
        }
        assert {"plots/pr_curve.png", "evaluation/confusion_matrix.json"} <= arts
        models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
        assert [m.source_run_id for m in models] == [result.run_id]

        again = subprocess.run(replay, capture_output=True, text=True, timeout=120)
        assert again.returncode == 2 and "already replayed" in again.stderr
        assert len(client.get_metric_history(result.run_id, "val_loss")) == 3
    finally:
        server.stop()


def _count(db: Path, query: str) -> int:
    if not db.is_file():
        return 0
    with sqlite3.connect(db, timeout=30) as con:
        try:
            return con.execute(query).fetchone()[0]
        except sqlite3.OperationalError:  # tables not created yet
            return 0


def _wait_for_stored_epoch(store: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    """Until a RUNNING run of the store has an epoch's validation loss stored: training is
    under way and recorded, however busy the machine is."""
    query = (
        "SELECT count(*) FROM metrics m JOIN runs r ON r.run_uuid = m.run_uuid "
        "WHERE r.status = 'RUNNING' AND m.key = 'val_loss'"
    )
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        if _count(store, query):
            return
        time.sleep(0.3)
    raise AssertionError("no run stored an epoch in time")


def _wait_for_running_trial(folder: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    """Until a trial of the sweep started in ``folder`` is RUNNING and its run stores epochs."""
    linked = (
        "SELECT count(*) FROM trials t JOIN trial_user_attributes a "
        "ON a.trial_id = t.trial_id WHERE t.state = 'RUNNING' AND a.key = 'mlflow_run_id'"
    )
    deadline = time.time() + timeout
    while not _count(folder / STUDY_DB, linked):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no trial started in time"
        time.sleep(0.3)
    _wait_for_stored_epoch(folder / "mlflow.db", proc, timeout)


def _start_sweep(tmp_path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *SWEEP, *extra],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_sigkilled_job_run_is_marked_killed_and_its_trial_fails_and_is_retried(tmp_path):
    beat = [
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.heartbeat_interval=1",
        "hydra.sweeper.grace_period=2",
        "hydra.sweeper.max_retry=1",
    ]
    proc = _start_sweep(tmp_path, *beat, "trainer.epochs=500")
    _wait_for_running_trial(tmp_path, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(3)  # past the grace period
    run_cli(tmp_path, *SWEEP, *beat, RESUME_SHORTER)

    study = load_study(f"sqlite:///{tmp_path}/{STUDY_DB}")
    killed, retry = study.trials
    assert killed.state == TrialState.FAIL
    assert retry.state == TrialState.COMPLETE
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == killed.number
    assert retry.params == killed.params
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    dead = client.get_run(killed.user_attrs["mlflow_run_id"])
    assert dead.info.status == "KILLED"
    assert "ended without closing the run" in dead.data.tags["losslab.error"]
    sweeps, jobs = runs_by_type(tmp_path)
    killed_parent, resumed_parent = sorted(sweeps, key=lambda r: r.info.start_time)
    assert (killed_parent.info.status, resumed_parent.info.status) == ("KILLED", "FINISHED")
    assert resumed_parent.data.tags[tag_keys.CONTINUES] == killed_parent.info.run_id
    assert sorted(r.info.status for r in jobs) == ["FINISHED", "KILLED"]


@pytest.mark.parametrize(
    ("signum", "exit_code"),
    [
        (signal.SIGINT, None),  # Ctrl-C, to the foreground process group
        (signal.SIGTERM, 143),  # Slurm's preemption, scancel and time limit; kill
        (signal.SIGHUP, 129),  # the terminal or ssh session closed
    ],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_ctrl_c_flushes_kills_the_run_fails_the_trial_and_the_sweep_resumes(
    tmp_path, signum, exit_code
):
    every_point = "tracking.every_n_batches=1"  # sweeps keep every 10th by default
    proc = _start_sweep(tmp_path, "hydra.sweeper.n_trials=2", "trainer.epochs=500", every_point)
    _wait_for_running_trial(tmp_path, proc)
    os.killpg(proc.pid, signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0, stderr
    if exit_code is not None:
        assert proc.returncode == exit_code, stderr
        assert f"Terminated by {signal.Signals(signum).name}" in stderr

    study = load_study(f"sqlite:///{tmp_path}/{STUDY_DB}")
    (interrupted,) = study.trials
    assert interrupted.state == TrialState.FAIL
    assert interrupted.user_attrs["fail_reason"] == "sweep interrupted"
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(interrupted.user_attrs["mlflow_run_id"])
    assert run.info.status == "KILLED"
    batch = client.get_metric_history(run.info.run_id, "batch/loss")
    epochs = client.get_metric_history(run.info.run_id, "val_loss")
    steps = sorted(m.step for m in batch)
    assert steps == list(range(len(steps)))  # every queued point, no gap
    assert epochs and len(steps) >= len(epochs) * 3  # 3+ batches per debug epoch
    sweeps, _ = runs_by_type(tmp_path)
    assert [r.info.status for r in sweeps] == ["KILLED"]

    run_cli(tmp_path, *SWEEP, "hydra.sweeper.n_trials=2", RESUME_SHORTER)
    study = load_study(f"sqlite:///{tmp_path}/{STUDY_DB}")
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    sweeps, _ = runs_by_type(tmp_path)
    assert sorted(r.info.status for r in sweeps) == ["FINISHED", "KILLED"]


def test_nan_loss_fails_its_trial_and_the_sweep_goes_on(tmp_path):
    run_cli(
        tmp_path,
        *SWEEP,
        "hydra.sweeper.n_trials=4",
        "hydra/sweeper/pruner=none",
        "hydra.sweeper.max_failure_rate=0.9",
        "loss=custom",
        "loss._target_=choice(tests.custom_losses.nan_loss,keras.losses.binary_crossentropy)",
        env={"PYTHONPATH": str(REPO)},
    )
    study = load_study(f"sqlite:///{tmp_path}/{STUDY_DB}")
    assert len(study.trials) == 4
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    states = set()
    for trial in study.trials:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        if trial.params["loss._target_"].endswith("nan_loss"):
            assert trial.state == TrialState.FAIL
            assert "training loss became nan" in trial.user_attrs["fail_reason"]
            assert run.info.status == "FAILED"
            assert "FloatingPointError" in run.data.tags["losslab.error"]
            assert len(client.get_metric_history(run.info.run_id, "loss")) == 1  # stopped at once
        else:
            assert trial.state == TrialState.COMPLETE and run.info.status == "FINISHED"
        states.add(trial.state)
    assert states == {TrialState.FAIL, TrialState.COMPLETE}


def test_four_parallel_jobs_share_one_sqlite_store_and_study(tmp_path):
    proc = run_cli(
        tmp_path,
        *SWEEP,
        "hydra/launcher=local_parallel",
        "hydra.launcher.n_jobs=4",
        "hydra.sweeper.n_jobs=4",
        "hydra.sweeper.n_trials=4",
        "hydra/sweeper/pruner=none",
        "trainer.epochs=3",
        "trainer.batch_size=16",
        "tracking.log_model=false",
        "tracking.every_n_batches=1",  # every point of every job, to count
        timeout=600,
    )
    assert "database is locked" not in proc.stdout + proc.stderr
    study = load_study(f"sqlite:///{tmp_path}/{STUDY_DB}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    _, jobs = runs_by_type(tmp_path)
    assert len(jobs) == 4 and {r.info.status for r in jobs} == {"FINISHED"}
    pids = {r.data.tags["losslab.process"] for r in jobs}
    assert len(pids) >= 2  # jobs really ran in separate processes
    cfg = to_objects(compose(tmp_path))
    steps = math.ceil(len(data.load(cfg.data, cfg.seed, tmp_path).x_train) / 16)
    for run in jobs:
        history = client.get_metric_history(run.info.run_id, "batch/loss")
        assert sorted(m.step for m in history) == list(range(3 * steps))
        assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 3


# -- a store that stops answering, with MLflow's own retry settings (minutes per call) -------
class Fault(keras.callbacks.Callback):
    """Applies a fault to the store after the first epoch."""

    def __init__(self, apply) -> None:
        super().__init__()
        self.apply, self.applied = apply, False

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch == 0:
            self.apply()
            self.applied = True


def _replay(spill: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "losslab.tracking.replay", str(spill)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("fault", ["killed", "paused", "proxy 503"])
def test_a_store_that_stops_answering_is_left_after_offline_after_s_and_replay_restores_all(
    tmp_path, caplog, fault
):
    """Killed (connections refused), SIGSTOPped (connections accepted, never answered), or
    behind a proxy answering 503: the run goes offline when ``offline_after_s`` says, not
    when MLflow's retries give up, and loses no point."""
    server = MlflowServer(tmp_path / "server-data")
    server.folder.mkdir()
    url = server.start()
    proxy = FlakyProxy(url) if fault == "proxy 503" else None
    faults = {
        "killed": (server.stop, server.start),
        "paused": (server.pause, lambda: server.pause(resume=True)),
        "proxy 503": (
            lambda: setattr(proxy, "failing", True),
            lambda: setattr(proxy, "failing", False),
        ),
    }
    cause, mend = faults[fault]
    try:
        broken = Fault(cause)
        cfg = compose(
            tmp_path,
            "tracking=server",
            f"tracking.uri={proxy.url if proxy else url}",
            "trainer.epochs=3",
            "trainer.batch_size=16",
            "tracking.offline_after_s=3",
            "tracking.log_model=true",
        )
        with caplog.at_level("WARNING", logger="losslab.tracking.run"):
            result = train(cfg, extra_callbacks=[broken])
        assert broken.applied
        assert "did not answer for 3s; recording into" in caplog.text  # ours, not MLflow's
        spill = tmp_path / "out" / "mlflow_spill"
        mend()
        proc = _replay(spill)
        assert proc.returncode == 0, proc.stderr
        client = MlflowClient(url)
        run = client.get_run(result.run_id)
        assert run.info.status == "FINISHED"
        assert_every_point_stored(client, result.run_id, 3, steps_per_epoch(result, 16))
        models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
        assert [m.source_run_id for m in models] == [result.run_id]
    finally:
        if proxy:
            proxy.close()
        server.stop()


def test_a_run_that_starts_offline_is_created_by_its_replay(tmp_path):
    """``tracking.if_unreachable=offline``: no server at start, the run spills from its first
    point; replay creates the run with everything it would have recorded."""
    server = MlflowServer(tmp_path / "server-data")
    server.folder.mkdir()
    cfg = compose(
        tmp_path,
        "tracking=server",
        f"tracking.uri={server.url}",
        "tracking.if_unreachable=offline",
        "trainer.epochs=2",
        "trainer.batch_size=16",
        "tracking.log_model=true",
    )
    result = train(cfg)
    spill = tmp_path / "out" / "mlflow_spill"
    server.start()
    try:
        proc = _replay(spill)
        assert proc.returncode == 0, proc.stderr
        run_id = proc.stdout.split("replayed into run ")[1].split(":")[0]
        client = MlflowClient(server.url)
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.info.experiment_id == client.get_experiment_by_name("losslab").experiment_id
        assert run.data.params["trainer.epochs"] == "2"
        assert run.data.tags["losslab.data"] == "digits_9v3"
        assert run.data.metrics["test_pr_auc"] == pytest.approx(result.metrics["test_pr_auc"])
        assert_every_point_stored(client, run_id, 2, steps_per_epoch(result, 16))
        assert len(client.search_logged_models(experiment_ids=[run.info.experiment_id])) == 1
        assert _replay(spill).returncode == 2  # already replayed: nothing twice
        assert len(client.search_runs([run.info.experiment_id])) == 1
    finally:
        server.stop()


def test_ctrl_c_with_the_store_away_spills_at_once_and_further_presses_lose_nothing(tmp_path):
    """The server dies; Ctrl-C, then three more presses while the run closes. MLflow's own
    retries would hold the process for minutes: it exits within the test's 60 s, the spill
    holds the rest, a later run does not take the spilled run for a dead one, and replay
    gives it every point and its true status."""
    server = MlflowServer(tmp_path / "server-data")
    server.folder.mkdir()
    url = server.start()
    common = ["tracking=server", f"tracking.uri={url}", "debug=default", "tracking.log_model=false"]
    try:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "train.py"), *common, "trainer.epochs=500"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP")},
        )
        _wait_for_stored_epoch(server.folder / "mlflow.db", proc)
        server.stop()
        proc.send_signal(signal.SIGINT)
        for _ in range(3):
            time.sleep(1)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode != 0
        (spill,) = tmp_path.glob("outputs/runs/*/mlflow_spill")
        assert f"losslab-replay {spill}" in stderr

        server.start()
        client = MlflowClient(url)
        (spilled,) = client.search_runs([client.get_experiment_by_name("losslab").experiment_id])
        run_cli(tmp_path, *common, "trainer.epochs=1")  # checks the store's RUNNING runs
        assert client.get_run(spilled.info.run_id).info.status == "RUNNING"  # not dead

        replayed = _replay(spill)
        assert replayed.returncode == 0, replayed.stderr
        run = client.get_run(spilled.info.run_id)
        assert run.info.status == "KILLED"
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "batch/loss"))
        epochs = client.get_metric_history(run.info.run_id, "val_loss")
        assert steps == list(range(len(steps)))  # every batch point, no gap, none twice
        assert len(epochs) >= 1 and len(steps) >= len(epochs) * 3
    finally:
        server.stop()


def test_ctrl_c_in_a_multirun_leaves_no_running_parent(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), "-m", "loss=focal,bce", "trainer.epochs=500"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _wait_for_stored_epoch(tmp_path / "mlflow.db", proc)
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    sweeps, jobs = runs_by_type(tmp_path)
    assert [r.info.status for r in sweeps] == ["KILLED"]
    assert [r.info.status for r in jobs] == ["KILLED"]


def test_a_store_outage_between_trials_is_waited_out(tmp_path):
    """The server stops once the first trial is done and comes back seconds later: the next
    job waits for it (up to tracking.offline_after_s) instead of failing its trial."""
    server = MlflowServer(tmp_path / "server")
    (tmp_path / "server").mkdir()
    url = server.start()
    tracking = ["tracking=server", f"tracking.uri={url}", "tracking.offline_after_s=90"]
    proc = _start_sweep(tmp_path, "hydra.sweeper.n_trials=3", *tracking)
    completed = "SELECT count(*) FROM trials WHERE state = 'COMPLETE'"
    deadline = time.time() + 240
    while not _count(tmp_path / STUDY_DB, completed):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no trial completed in time"
        time.sleep(0.2)
    server.stop()
    time.sleep(8)
    server.start()
    try:
        _, stderr = proc.communicate(timeout=400)
        assert proc.returncode == 0, stderr
        study = load_study(f"sqlite:///{tmp_path}/{STUDY_DB}")
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
        client = MlflowClient(url)
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert sorted(r.info.status for r in runs) == ["FINISHED"] * 4  # the parent and 3 jobs
    finally:
        server.stop()


def test_a_second_sweep_command_in_the_same_folder_is_refused(tmp_path):
    """The same sweep command started again while the first runs: refused in one line, exit
    code 2, before any run or trial; the first one's jobs and parent are its own."""
    same = ["hydra.sweeper.n_trials=2", "trainer.epochs=500"]
    first = _start_sweep(tmp_path, *same)
    _wait_for_running_trial(tmp_path, first)
    second = run_cli(tmp_path, *SWEEP, *same, check=False)
    sweeps, jobs = runs_by_type(tmp_path)
    trials = load_study(f"sqlite:///{tmp_path}/{STUDY_DB}").trials
    os.killpg(first.pid, signal.SIGTERM)
    first.communicate(timeout=120)

    assert second.returncode == 2, second.stderr
    (line,) = second.stderr.strip().splitlines()
    assert line.startswith(f"error: hydra.sweep.dir={tmp_path}/outputs/sweeps/{STUDY}: ")
    assert f"another sweep command (pid {first.pid} on " in line
    assert (len(sweeps), len(jobs), len(trials)) == (1, 1, 1)  # the first command's only
    assert first.returncode == 143
    sweeps, jobs = runs_by_type(tmp_path)
    assert [r.info.status for r in sweeps + jobs] == ["KILLED", "KILLED"]
    states = [t.state for t in load_study(f"sqlite:///{tmp_path}/{STUDY_DB}").trials]
    assert states == [TrialState.FAIL]
