"""``losslab sweep status STUDY``: where a study stands, and the end of a detached sweep.

A sweep in worker mode started with ``--detach`` returns while its workers run, its MLflow
parent run left RUNNING. The study keeps what this command needs: how many trials it is to
have (``losslab.n_trials``) and that parent (``losslab.parent_run``: its id, and the
tracking URI when it holds no secret). Asked once the study has its trials, this command
writes the study's report on the parent and ends it FINISHED, as a waiting command does;
asked once every worker has ended short of them, it ends the parent FAILED with the report
so far and exits 1, so nothing is left RUNNING (the same command then resumes the study).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from losslab.search.settings import best_trials
from losslab.search.worker import FINISHED, INFRASTRUCTURE_ATTR, counted

N_TRIALS_ATTR = "losslab.n_trials"
PARENT_ATTR = "losslab.parent_run"
WORKERS_ATTR = "losslab.workers"  # {"kind": "local" | "slurm", "host": ..., "jobs": [ids]}
DEFAULT_STORAGE = "sqlite:///{cwd}/outputs/sweeps/{study}/optuna.db"  # hparams_search=optuna's


def remember_parent(study: optuna.Study, run_id: str, tracking_uri: str) -> None:
    """Keep a detached sweep's parent in its study (the URI only when it holds no secret:
    the study is read by every worker and by Optuna Dashboard)."""
    from losslab.tracking.redact import redact_text

    safe = redact_text(tracking_uri) == tracking_uri
    study.set_user_attr(
        PARENT_ATTR, {"run_id": run_id, "tracking_uri": tracking_uri if safe else None}
    )


def remember_workers(study: optuna.Study, kind: str, job_ids: list[str]) -> None:
    """The workers' job ids, so status can tell how many still run."""
    record = {"kind": kind, "host": socket.gethostname(), "jobs": [str(j) for j in job_ids]}
    study.set_user_attr(WORKERS_ATTR, record)


def workers_alive(record: dict[str, Any] | None) -> int | None:
    """How many of the workers still run: local ones are processes of their host (a job id
    is the pid), Slurm ones what ``squeue`` lists; None when this machine cannot tell."""
    if not record:
        return None
    if record["kind"] == "local":
        if record["host"] != socket.gethostname():
            return None
        return sum(_process_runs(int(job)) for job in record["jobs"])
    try:
        listed = subprocess.run(
            ["squeue", "--noheader", "--format=%i", "--jobs", ",".join(record["jobs"])],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return len(listed.stdout.split()) if listed.returncode == 0 else None


def _process_runs(pid: int) -> bool:
    """Whether ``pid`` is a live process (not one that ended and waits to be reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def follow_line(study_name: str, storage_url: str) -> str:
    """What a detached sweep prints last: the command that follows it (secrets masked)."""
    from losslab.tracking.redact import redact_text

    return f"follow it with: losslab sweep status {study_name} --storage {redact_text(storage_url)}"


def states(study: optuna.Study) -> Counter:
    """Trials by what they are now: complete, pruned, failed, running, queued, and failed by
    their infrastructure (``requeued``: their params ran or wait again)."""
    count: Counter = Counter()
    for trial in study.get_trials(deepcopy=False):
        if trial.user_attrs.get(INFRASTRUCTURE_ATTR):
            count["requeued"] += 1
        else:
            name = {TrialState.FAIL: "failed", TrialState.WAITING: "queued"}.get(trial.state)
            count[name or trial.state.name.lower()] += 1
    return count


def summary(study: optuna.Study) -> list[str]:
    """Lines for the terminal: the counts, then the best trial so far (or the front)."""
    count, n_trials = states(study), study.user_attrs.get(N_TRIALS_ATTR)
    finished = counted(study, FINISHED)
    of = f" of {n_trials}" if n_trials else ""
    keys = ("complete", "pruned", "failed", "running", "queued", "requeued")
    alive = workers_alive(study.user_attrs.get(WORKERS_ATTR))
    workers = "" if alive is None else f"; {alive} workers alive"
    lines = [
        f"study {study.study_name}: {finished}{of} finished; "
        + ", ".join(f"{count[k]} {k}" for k in keys)
        + workers
    ]
    for trial in best_trials(study):
        values = ", ".join(f"{v:.4g}" for v in trial.values)
        params = " ".join(f"{k}={v}" for k, v in trial.params.items())
        lines.append(f"best so far: trial {trial.number}: {values}; {params}")
    return lines


def done(study: optuna.Study) -> bool:
    n_trials = study.user_attrs.get(N_TRIALS_ATTR)
    return n_trials is not None and counted(study, FINISHED) >= n_trials


def end_parent(
    study: optuna.Study, storage_url: str, tracking_uri: str | None, status: str = "FINISHED"
) -> str | None:
    """End the detached sweep's parent ``status`` with the study's report; the line that says
    so, or None when there is none open. ``tracking_uri``: the store, when the study does not
    name it."""
    parent: dict[str, Any] = study.user_attrs.get(PARENT_ATTR) or {}
    uri = tracking_uri or parent.get("tracking_uri")
    if not parent or not uri:
        return None
    from mlflow import MlflowClient

    from losslab.search.report import record_study

    client = MlflowClient(uri)
    run_id = parent["run_id"]
    if client.get_run(run_id).info.status != "RUNNING":
        return None
    record_study(client, run_id, storage_url, study.study_name)
    client.set_terminated(run_id, status)
    return f"MLflow parent run {run_id} ended {status} with the study's report"


def main(argv: list[str], prog: str = "losslab sweep status") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("study", help="the study's name (hydra.sweeper.study_name)")
    parser.add_argument(
        "--storage", help="its storage URL (default: outputs/sweeps/STUDY/optuna.db here)"
    )
    parser.add_argument("--tracking-uri", help="the MLflow store, if the study does not say")
    args = parser.parse_args(argv)
    from losslab.search.storage import open_storage

    url = args.storage or DEFAULT_STORAGE.format(cwd=Path.cwd(), study=args.study)
    missing = url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file()
    try:
        if missing:
            raise KeyError(url)
        study = optuna.load_study(study_name=args.study, storage=open_storage(url))
    except KeyError:
        from losslab.tracking.redact import redact_text

        print(f"error: {args.study}: no such study in {redact_text(url)}", file=sys.stderr)
        return 2
    print("\n".join(summary(study)))
    if done(study):
        ended = end_parent(study, url, args.tracking_uri)
        if ended:
            print(ended)
    elif workers_alive(study.user_attrs.get(WORKERS_ATTR)) == 0:
        # a Slurm worker requeued after preemption is listed by squeue, so it is alive here
        ended = end_parent(study, url, args.tracking_uri, "FAILED")
        print("no worker runs and the study is not done: run the same sweep command to go on")
        if ended:
            print(ended)
        return 1
    return 0
