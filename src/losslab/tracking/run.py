"""One MLflow run per training job: creation under its sweep's parent, params, artifacts,
the model, and an honest final status.

Everything goes through ``MlflowClient``. A store that goes away mid-run does not stop
training: metric points wait in the writer's queue, and once the store has been unreachable
for ``offline_after_s`` the run records the rest into a spill folder to replay later
(:mod:`losslab.tracking.spill`).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import requests
import yaml
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

from losslab.tracking import stale
from losslab.tracking.model import log_keras_model
from losslab.tracking.redact import flatten, redact, redact_text, redact_tree
from losslab.tracking.spill import Spill
from losslab.tracking.store import ensure_ready, keep_credentials_off_stdout
from losslab.tracking.writer import MetricWriter, log_in_batches

log = logging.getLogger(__name__)

MLFLOW_RUN_ID_ENV = "MLFLOW_RUN_ID"  # set by `mlflow run` for the run it made


def experiment_id(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The experiment called ``name``, created (with ``artifact_location``) if missing."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except mlflow.exceptions.MlflowException:  # created meanwhile by a parallel job
        return client.get_experiment_by_name(name).experiment_id


def git_commit(cwd: str | Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def ui_url(tracking_uri: str, experiment: str, run_id: str) -> str | None:
    """The run's page when the tracking store is a server."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"
    return None


def _is_pruned(exc_type: type) -> bool:
    """Optuna's ``TrialPruned``: the pruner stopped the job, which is no failure."""
    return exc_type.__name__ == "TrialPruned" and exc_type.__module__.startswith("optuna")


def unreachable(err: BaseException) -> bool:
    """Whether ``err`` says the tracking store could not be reached (not a bad request)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return True
        text = str(seen)
        if "Max retries exceeded" in text or "Connection refused" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


RUN_NAME_CHARS = 250  # what the MLflow UI's run list shows of a name


@dataclass(frozen=True)
class RunStart:
    """How the run begins: its name, parent, tags, where a new experiment keeps artifacts,
    or the id of a run made for us (by ``mlflow run``) to record into instead."""

    run_name: str | None = None
    parent_run_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    artifact_location: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Liveness:
    """How the run copes with the store going away and tells other processes it lives:
    unreachable for ``offline_after_s``, the rest goes to ``spill_dir``; a heartbeat tag every
    ``heartbeat_s``; RUNNING runs of other hosts silent for ``stale_after_s`` are dead."""

    spill_dir: Path | None = None
    offline_after_s: float | None = None
    heartbeat_s: float = 60.0
    stale_after_s: float = 600.0


class TrackedRun:
    """Context manager for one job's MLflow run.

    On a clean exit the run is FINISHED; on an exception FAILED with the error as the tag
    ``losslab.error``; on Ctrl-C KILLED; stopped by an Optuna pruner FINISHED and tagged
    ``losslab.pruned``. Queued metrics are flushed first in every case. Before the run is
    created, runs of the experiment left RUNNING by dead processes are ended KILLED.
    """

    def __init__(
        self,
        uri: str,
        experiment: str,
        start: RunStart | None = None,
        liveness: Liveness | None = None,
    ) -> None:
        self.uri = uri
        keep_credentials_off_stdout(uri)
        start, live = start or RunStart(), liveness or Liveness()
        ensure_ready(uri)
        self.client = MlflowClient(uri)
        self._begin(experiment, start, live.stale_after_s)
        self.writer = MetricWriter(
            self.client, self.run_id, heartbeat=(live.heartbeat_s, self._heartbeat)
        )
        self.status = RunStatus.to_string(RunStatus.RUNNING)
        self.model_uri: str | None = None  # set by log_model
        self.spill_dir = live.spill_dir
        self.offline_after_s = live.offline_after_s
        self.spill: Spill | None = None  # set once the store stayed away too long

    def _begin(self, experiment: str, start: RunStart, stale_after_s: float) -> None:
        """Create the run (or take the one made for us), after ending dead runs KILLED."""
        run_name, parent_run_id, run_id = start.run_name, start.parent_run_id, start.run_id
        all_tags = {k: redact(k, str(v)) for k, v in start.tags.items()}
        all_tags[stale.PROCESS_TAG] = stale.process_token()
        all_tags[stale.HEARTBEAT_TAG] = str(int(time.time()))
        if run_name:  # masked before it is cut, so no part of a secret is left unmatched
            run_name = redact_text(run_name)[:RUN_NAME_CHARS]
            all_tags[MLFLOW_RUN_NAME] = run_name
        if parent_run_id:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        if run_id:  # a run made for us, e.g. by `mlflow run`
            self.run = self.client.get_run(run_id)
            self.experiment_id = self.run.info.experiment_id
            stale.end_dead_runs(self.client, self.experiment_id, stale_after_s)
            for key, value in all_tags.items():
                self.client.set_tag(run_id, key, value)
        else:
            self.experiment_id = experiment_id(self.client, experiment, start.artifact_location)
            stale.end_dead_runs(self.client, self.experiment_id, stale_after_s)
            self.run = self.client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
        self.run_id = self.run.info.run_id

    def _heartbeat(self) -> None:
        self.client.set_tag(self.run_id, stale.HEARTBEAT_TAG, str(int(time.time())))

    def __enter__(self) -> TrackedRun:
        os.environ.pop(MLFLOW_RUN_ID_ENV, None)  # an inherited id would redirect fluent calls
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.sync()
        self.writer.close(timeout=1 if self.offline else None)
        pruned = exc_type is not None and _is_pruned(exc_type)
        if exc_type is None or pruned:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
        if pruned:
            self.set_tags({"losslab.pruned": "true", "losslab.pruned_reason": str(exc)})
        elif exc is not None:
            self.set_tags({"losslab.error": f"{exc_type.__name__}: {exc}"[:5000]})
        self._call(
            lambda: self.client.set_terminated(self.run_id, status),
            lambda spill: spill.status(status),
        )
        self.status = status
        if self.spill is not None:
            print(
                f"MLflow store {redact_text(self.uri)} unreachable: run {self.run_id} kept in "
                f"{self.spill.folder}; write it to MLflow later with: "
                f"losslab-replay {self.spill.folder}",
                file=sys.stderr,
            )

    # -- a store that went away -------------------------------------------------------------
    @property
    def offline(self) -> bool:
        return self.spill is not None

    def sync(self) -> bool:
        """Wait until every queued point is stored; go offline if the store stays away."""
        if self.offline:
            return False
        if self.writer.wait_stored(self.offline_after_s):
            return True
        self._go_offline(f"unreachable for more than {self.offline_after_s}s")
        return False

    def _go_offline(self, why: str) -> Spill:
        if self.spill is None:
            folder = self.spill_dir or Path.cwd() / "mlflow_spill"
            self.spill = Spill(folder, self.uri, self.run_id)
            self.spill.metrics(self.writer.abandon())
            log.warning("MLflow store %s %s: recording into %s", redact_text(self.uri), why, folder)
        return self.spill

    def _call(self, online: Callable[[], Any], offline: Callable[[Spill], Any]) -> Any:
        """``online()`` against the store; into the spill if it is (or becomes) unreachable."""
        if self.spill is None:
            try:
                return online()
            except Exception as err:
                if not unreachable(err):
                    raise
                self._go_offline(f"failed ({type(err).__name__})")
        return offline(self.spill)

    # -- what a run records ---------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Flattened, redacted params, in requests of at most 100."""
        flat = flatten(redact_tree(dict(params)))
        entries = [Param(k, str(v)[:MAX_PARAM_VAL_LENGTH]) for k, v in flat.items()]
        log_in_batches(self.client, self.run_id, params=entries)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        if self.spill is None:
            self.writer.add(step, dict(metrics))
            return
        now = int(time.time() * 1000)
        self.spill.metrics(Metric(k, float(v), now, step) for k, v in metrics.items())

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        clean = {key: redact(key, str(value)) for key, value in tags.items()}

        def online() -> None:
            for key, value in clean.items():
                self.client.set_tag(self.run_id, key, value)

        self._call(online, lambda spill: spill.tags(clean))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._call(
            lambda: self.client.log_artifact(self.run_id, str(path), artifact_path),
            lambda spill: spill.artifact(path, artifact_path),
        )

    def log_artifacts(self, folder: str | Path, artifact_path: str | None = None) -> None:
        self._call(
            lambda: self.client.log_artifacts(self.run_id, str(folder), artifact_path),
            lambda spill: spill.artifact(folder, artifact_path),
        )

    def log_text(self, text: str, artifact_file: str) -> None:
        clean = redact_text(text)
        self._call(
            lambda: self.client.log_text(self.run_id, clean, artifact_file),
            lambda spill: spill.text(clean, artifact_file),
        )

    def log_yaml(self, data: Any, artifact_file: str) -> None:
        self.log_text(yaml.safe_dump(redact_tree(data), sort_keys=False), artifact_file)

    def log_model(self, model, input_example) -> str | None:
        """The model through MLflow's TensorFlow flavour, with signature and input example."""

        def online() -> str:
            self.model_uri = log_keras_model(
                self.uri, self.run_id, self.experiment_id, model, input_example
            )
            return self.model_uri

        return self._call(online, lambda spill: spill.model(model, input_example))
