"""Sweeps on a real one-node Slurm cluster (tests/slurm.py): trials submitted as GPU jobs by
``hydra/launcher=slurm_gpu``, the study in PostgreSQL, the runs in an MLflow server; two
workers on one study; a job cancelled with scancel."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from losslab.search.storage import open_storage
from losslab.search.worker import INFRASTRUCTURE_ATTR
from losslab.tracking import tag_keys
from tests import slurm
from tests.helpers import (
    HOPELESS_LR,
    load_study,
    needs_postgres,
    run_cli,
    runs_by_type,
    start_cli,
    sweeps_and_jobs,
)

# one worker holds the cluster (its ports and daemons are one per machine)
pytestmark = [pytest.mark.slow, slurm.needs_slurm, pytest.mark.xdist_group("slurm")]

# what README's GPU sweep sets, sized for this machine; a job asks for one of the node's GPUs
SLURM_SWEEP = [
    "-m",
    "hparams_search=optuna",
    "hydra/launcher=slurm_gpu",
    "hydra.launcher.partition=gpu",
    "hydra.launcher.gpus_per_node=1",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=10",
    "hydra.sweeper.n_jobs=2",
    "debug=default",
    "trainer.threads=1",
    "tracking=server",
]
ARRAY_TASK = re.compile(r"\d+_\d+")


def on_servers(tmp_path: Path, postgres_url: str, mlflow_server: str) -> list[str]:
    """The study in PostgreSQL and the runs in the MLflow server, both named after the test
    (the servers live for the whole session)."""
    return [
        f"hydra.sweeper.storage={postgres_url}",
        f"hydra.sweeper.study_name={tmp_path.name}",
        f"tracking.uri={mlflow_server}",
        f"tracking.experiment={tmp_path.name}",
    ]


def test_the_cluster_gives_each_gpu_job_its_own_gpu_and_leaves_nothing_running(tmp_path):
    munged_before = slurm.running("munged")
    with slurm.cluster(tmp_path / "cluster") as cluster:
        # each job waits for the other, so both hold a GPU at once
        script = f"echo $CUDA_VISIBLE_DEVICES > {tmp_path}/gpu.$SLURM_JOB_ID; "
        script += f"for i in $(seq 300); do [ $(ls {tmp_path}/gpu.* | wc -l) = 2 ] && break; "
        script += "sleep 0.2; done"
        for _ in range(2):
            cluster.command("sbatch", "--gpus-per-node=1", "-o", "/dev/null", "--wrap", script)
        too_many = ["sbatch", "--gpus-per-node=3", "--wrap", "true"]
        with pytest.raises(RuntimeError, match="Requested node configuration is not available"):
            cluster.command(*too_many)
        while cluster.queued():
            time.sleep(0.2)
        got = sorted(p.read_text().strip() for p in tmp_path.glob("gpu.*"))
        assert got == ["0", "1"]
    assert slurm.running(str(cluster.conf)) == []  # slurmctld and slurmd
    assert slurm.running("slurmstepd") == []
    assert slurm.running("munged") == munged_before  # stopped only if started here


@needs_postgres
def test_a_sweep_runs_each_trial_as_a_slurm_gpu_job_and_prunes_across_jobs(
    tmp_path, slurm_cluster, postgres_url, mlflow_server
):
    """Six trials in three job arrays. lr=1e-9 cannot learn (data separable, lr=0.01 always
    learns): once trials of earlier jobs have completed, a hopeless trial's job reads their
    curves from the PostgreSQL study and prunes itself, as in the sweeps of one machine."""
    where = on_servers(tmp_path, postgres_url, mlflow_server)
    run_cli(
        tmp_path,
        *SLURM_SWEEP,
        *where,
        *HOPELESS_LR,
        "hydra.sweeper.n_trials=6",
        "trainer.epochs=4",
        env=slurm_cluster.env,
    )

    study = load_study(postgres_url, tmp_path.name)
    assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    (parent,), jobs = sweeps_and_jobs(MlflowClient(mlflow_server), tmp_path.name)
    assert len(jobs) == 6
    assert {j.data.tags["mlflow.parentRunId"] for j in jobs} == {parent.info.run_id}
    assert {t.user_attrs["mlflow_run_id"] for t in study.trials} == {j.info.run_id for j in jobs}
    slurm_job = {j.info.run_id: j.data.tags[tag_keys.SLURM_JOB_ID] for j in jobs}
    assert len(set(slurm_job.values())) == 6
    assert all(ARRAY_TASK.fullmatch(s) for s in slurm_job.values())
    slurm_cluster.wait_idle()
    for job_id in slurm_job.values():
        fields = slurm_cluster.job(job_id)
        assert (fields["JobState"], fields["Partition"]) == ("COMPLETED", "gpu")
        assert fields["TresPerNode"] == "gres:gpu:1"

    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, [(t.params, t.state) for t in study.trials]
    assert {t.params["optimizer.lr"] for t in pruned} == {1e-9}
    assert all(len(t.intermediate_values) < 4 for t in pruned)  # stopped inside its job
    runs = {j.info.run_id: j for j in jobs}
    for trial in pruned:  # judged by curves that other Slurm jobs wrote, completed before it
        run = runs[trial.user_attrs["mlflow_run_id"]]
        assert run.data.tags["losslab.outcome"] == "pruned"
        earlier = [
            t
            for t in study.trials
            if t.state == TrialState.COMPLETE and t.datetime_complete < trial.datetime_start
        ]
        assert earlier
        assert slurm_job[run.info.run_id] not in {
            slurm_job[t.user_attrs["mlflow_run_id"]] for t in earlier
        }
    sweep_dir = tmp_path / "outputs" / "sweeps" / tmp_path.name
    submissions = [p.read_text() for p in sweep_dir.glob(".submitit/*/*_submission.sh")]
    assert len(submissions) == 3  # one job array per batch of n_jobs
    for text in submissions:
        assert "#SBATCH --gpus-per-node=1\n" in text
        assert "#SBATCH --export=ALL,TF_FORCE_GPU_ALLOW_GROWTH=true\n" in text


@needs_postgres
def test_two_workers_on_slurm_share_one_study_each_with_its_own_parent(
    tmp_path, slurm_cluster, postgres_url, mlflow_server
):
    where = on_servers(tmp_path, postgres_url, mlflow_server)
    workers = [
        start_cli(
            tmp_path,
            *SLURM_SWEEP,
            *where,
            "hydra.sweeper.n_trials=4",
            "trainer.epochs=2",
            f"hydra.sweep.dir={tmp_path}/worker{i}",
            f"hydra.sweeper.sampler.seed={i}",  # workers draw different points
            env=slurm_cluster.env,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=400)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs

    study = load_study(postgres_url, tmp_path.name)
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert {t.state for t in study.trials} == {TrialState.COMPLETE}
    parents, jobs = sweeps_and_jobs(MlflowClient(mlflow_server), tmp_path.name)
    sweep_dirs = {p.info.run_id: p.data.tags["losslab.sweep_dir"] for p in parents}
    assert sorted(sweep_dirs.values()) == [f"{tmp_path}/worker0", f"{tmp_path}/worker1"]
    assert len(jobs) == 4
    for job in jobs:  # under the parent of the worker whose sweep folder its Slurm job wrote
        log = slurm_cluster.job(job.data.tags[tag_keys.SLURM_JOB_ID])["StdOut"]
        assert log.startswith(sweep_dirs[job.data.tags["mlflow.parentRunId"]] + "/")
    assert len({j.data.tags["mlflow.parentRunId"] for j in jobs}) == 2  # both ran trials


@needs_postgres
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # retry's readers
def test_a_cancelled_job_fails_its_trial_and_the_sweep_runs_it_again(
    tmp_path, slurm_cluster, postgres_url, mlflow_server
):
    where = on_servers(tmp_path, postgres_url, mlflow_server)
    sweep = start_cli(
        tmp_path,
        *SLURM_SWEEP,
        *where,
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.max_retry=1",
        "trainer.epochs=100",  # still training when cancelled, with 5 s to go before SIGKILL
        env=slurm_cluster.env,
    )
    client = MlflowClient(mlflow_server)
    number, run_id = _first_running_trial(postgres_url, tmp_path.name, sweep)
    job_id = client.get_run(run_id).data.tags[tag_keys.SLURM_JOB_ID]
    slurm_cluster.command("scancel", job_id)
    output = sweep.communicate(timeout=400)[0]
    assert sweep.returncode == 0, output

    study = load_study(postgres_url, tmp_path.name)
    cancelled = study.trials[number]
    assert cancelled.state == TrialState.FAIL
    assert cancelled.user_attrs["fail_reason"].startswith(
        f"JobLost: Slurm job {job_id} ended CANCELLED without a result"
    )
    assert len(study.trials) == 3
    (retry,) = [t for t in study.trials if RetryHeartbeatStaleTrialCallback.retry_history(t)]
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == number
    assert retry.params == cancelled.params
    assert "fail_reason" not in retry.user_attrs
    assert {t.state for t in study.trials if t.number != number} == {TrialState.COMPLETE}
    assert slurm_cluster.job(job_id)["JobState"] == "CANCELLED"
    killed = client.get_run(run_id)  # ended by the next run to start: its process is gone
    assert killed.info.status == "KILLED"
    assert "ended without closing the run" in killed.data.tags["losslab.error"]
    again = client.get_run(retry.user_attrs["mlflow_run_id"])
    assert again.info.status == "FINISHED"
    assert again.data.tags[tag_keys.SLURM_JOB_ID] != job_id


def _first_running_trial(storage: str, name: str, sweep, timeout: float = 240):
    """The number and MLflow run of the first trial whose job has started its run, while
    ``sweep`` (the command, or None once it returned) runs."""
    store = open_storage(storage)
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert sweep is None or sweep.poll() is None, sweep.communicate()[0]
        found = _linked_trial(store, name)
        if found is not None:
            return found
        time.sleep(0.5)
    raise AssertionError("no trial started its run in time")


def _training(client: MlflowClient, run_id: str, timeout: float = 120):
    """The run once it has recorded its first epoch: its job is past loading and building."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = client.get_run(run_id)
        assert run.info.status == "RUNNING", "the trial ended before it could be signalled"
        if "epoch_time_s" in run.data.metrics:
            return run
        time.sleep(0.2)
    raise AssertionError("the trial recorded no epoch in time")


def _linked_trial(store, name: str) -> tuple[int, str] | None:
    try:
        study_id = store.get_study_id_from_name(name)
    except KeyError:  # not created yet
        return None
    for trial in store.get_all_trials(study_id, states=(TrialState.RUNNING,)):
        if "mlflow_run_id" in trial.user_attrs:
            return trial.number, trial.user_attrs["mlflow_run_id"]
    return None


def test_a_scheduled_worker_fires_again_and_continues_the_study(tmp_path, slurm_cluster):
    """pipelines/scheduled_sweep.sbatch every 2 s: each firing queues the next and adds one
    trial; two firings are two Slurm jobs whose parents continue one study."""
    name = f"scheduled-{tmp_path.name}"[:40]
    storage = f"sqlite:///{tmp_path}/optuna.db"
    slurm_cluster.command(
        "sbatch",
        f"--job-name={name}",
        "--begin=now",
        f"--chdir={tmp_path}",
        str(Path(__file__).parents[1] / "pipelines" / "scheduled_sweep.sbatch"),
        "2",
        "hydra.sweeper.study_name=scheduled",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.n_trials=50",
        "hydra.sweeper.trials_per_run=1",
        "debug=default",
        "trainer.epochs=1",
        "trainer.threads=1",
    )
    deadline, done = time.time() + 240, []
    try:
        while time.time() < deadline:
            with contextlib.suppress(KeyError):
                done = load_study(storage, "scheduled").get_trials(states=[TrialState.COMPLETE])
                if len(done) >= 2:
                    break
            time.sleep(1)
    finally:
        slurm_cluster.command("scancel", f"--name={name}")
    assert len(done) >= 2, "".join(p.read_text() for p in tmp_path.glob(f"{name}-*.out"))
    sweeps, jobs = runs_by_type(tmp_path)
    firings = {job.data.tags[tag_keys.SLURM_JOB_ID] for job in jobs}
    assert len(firings) >= 2  # each trial ran in the Slurm job of its own firing
    first, second = sorted(sweeps, key=lambda r: r.info.start_time)[:2]
    assert second.data.tags["losslab.continues"] == first.info.run_id


@needs_postgres
def test_two_workers_pull_four_trials_detached_and_status_ends_the_parent(
    tmp_path, slurm_cluster, postgres_url, mlflow_server
):
    """Worker mode on Slurm: two jobs of one array each pull trials (pruned ones among
    them) until the PostgreSQL study has four; the command returns at once, and
    ``losslab sweep status`` follows the study and ends the parent once it is done. One
    worker gets submitit's preemption signal mid-trial: its trial's params run again, and
    its job asks Slurm to queue it again."""
    import subprocess
    import sys

    where = on_servers(tmp_path, postgres_url, mlflow_server)
    proc = run_cli(
        tmp_path,
        *SLURM_SWEEP,
        *where,
        *HOPELESS_LR,
        "hydra.sweeper.workers=2",
        "hydra.sweeper.detach=true",
        "hydra.sweeper.n_trials=4",
        # seconds of training left when its worker is signalled after the first epoch
        "trainer.epochs=40",
        "trainer.early_stopping.enabled=false",
        env=slurm_cluster.env,
    )
    assert "follow it with: losslab sweep status" in proc.stdout
    number, run_id = _first_running_trial(postgres_url, tmp_path.name, None)
    preempted = _training(MlflowClient(mlflow_server), run_id).data.tags[tag_keys.SLURM_JOB_ID]
    slurm_cluster.command("scancel", "--signal=USR2", preempted)  # as before a time limit
    status = [sys.executable, "-m", "losslab", "sweep", "status", tmp_path.name]
    status += ["--storage", postgres_url]
    deadline = time.monotonic() + 600
    while True:
        told = subprocess.run(status, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert told.returncode == 0, told.stderr
        if "ended FINISHED" in told.stdout:
            break
        assert time.monotonic() < deadline, told.stdout
        time.sleep(3)

    study = load_study(postgres_url, tmp_path.name)
    stopped = study.trials[number]
    assert stopped.state == TrialState.FAIL and stopped.user_attrs[INFRASTRUCTURE_ATTR]
    rest = [t for t in study.trials if t.number != number]
    assert any(t.params == stopped.params for t in rest)  # its params ran again
    assert len(rest) == 4 and {t.state for t in rest} <= {TrialState.COMPLETE, TrialState.PRUNED}
    (parent,), jobs = sweeps_and_jobs(MlflowClient(mlflow_server), tmp_path.name)
    assert parent.info.status == "FINISHED"
    ended = sorted((j.info.status, j.data.tags.get(tag_keys.ERROR, "")) for j in jobs)
    assert [status for status, _ in ended] == ["FINISHED"] * 4 + ["KILLED"], ended
    assert {j.data.tags["mlflow.parentRunId"] for j in jobs} == {parent.info.run_id}
    slurm_jobs = {j.data.tags[tag_keys.SLURM_JOB_ID] for j in jobs}
    assert len(slurm_jobs) <= 2  # four trials, two workers: each ran several
    sweep_dir = tmp_path / "outputs" / "sweeps" / tmp_path.name
    assert len(list(sweep_dir.glob(".submitit/*/*_submission.sh"))) == 1  # one array
    # queued again by its worker; Slurm holds a requeued job for a while before it starts
    # again (it would find the study done and end), so the test cancels it
    assert slurm_cluster.job(preempted)["Restarts"] == "1"
    slurm_cluster.command("scancel", preempted)
    slurm_cluster.wait_idle()
