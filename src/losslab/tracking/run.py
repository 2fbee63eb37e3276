"""One MLflow run per training job: creation under its sweep's parent, params, artifacts,
the model, and an honest final status.

Everything goes through ``MlflowClient``. A store that goes away mid-run does not stop
training: metric points wait in the writer's queue, and once the store has been unreachable
for ``offline_after_s`` the run records the rest into a spill folder to replay later
(:mod:`losslab.tracking.spill`).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import yaml
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

from losslab.process import handling, interruption, record_sent, sent_since, signals_sent
from losslab.tracking import disk, stale, tag_keys
from losslab.tracking.launcher import create_run, launcher_run, records_into
from losslab.tracking.model import log_keras_model
from losslab.tracking.names import marked
from losslab.tracking.patience import Patience, StoreAway, unreachable
from losslab.tracking.redact import flatten, redact, redact_text, redact_tree
from losslab.tracking.spill import SPILL_DIR, Spill
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


RUN_NAME_CHARS = 250  # what the MLflow UI's run list shows of a name


@dataclass(frozen=True)
class RunStart:
    """How the run begins: its name, parent, tags, where a new experiment keeps artifacts,
    or the id of a run made for us (by ``mlflow run``) to record into instead. ``attach``
    records into ``run_id`` as it is and leaves its status to whoever started it (a user's
    ``mlflow.start_run()`` around ``fit``)."""

    run_name: str | None = None
    parent_run_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    artifact_location: str | None = None
    run_id: str | None = None
    attach: bool = False


@dataclass(frozen=True)
class Liveness:
    """How the run copes with the store going away and tells other processes it lives:
    unreachable for ``offline_after_s``, the rest goes to ``spill_dir``; a heartbeat tag every
    ``heartbeat_s``; RUNNING runs of other hosts silent for ``stale_after_s`` are dead."""

    spill_dir: Path | None = None
    offline_after_s: float | None = None
    heartbeat_s: float = 60.0
    stale_after_s: float = 600.0
    start_offline: str | None = None  # why the store cannot be used at start: spill from it


# Ctrl-C; what Slurm sends at preemption, scancel and time limits; what a closed terminal sends
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def deferred_interrupts(hurry: threading.Event):
    """While a run is being closed, Ctrl-C (or SIGTERM, SIGHUP) stops the wait for the store
    (``hurry``) instead of breaking off the close: whatever is not stored is spilled, the run
    is never left open. The signal is recorded (:func:`losslab.process.sent_since`), so the
    process still ends once the run is closed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum, frame) -> None:
        record_sent(signum)
        hurry.set()
        print("Interrupted: not waiting for the tracking store", file=sys.stderr)

    with handling(INTERRUPTS, on_interrupt):
        yield


class TrackedRun:
    """Context manager for one job's MLflow run.

    On a clean exit the run is FINISHED; on an exception FAILED with the error as the tag
    ``losslab.error``; on Ctrl-C KILLED, as on SIGTERM or SIGHUP even where a library turned
    the signal's exception into its own error (:func:`losslab.process.sent_since`);
    stopped by an Optuna pruner FINISHED and tagged ``losslab.pruned``. Queued metrics are
    flushed first in every case. Before the run is created, runs of the experiment left
    RUNNING by dead processes are ended KILLED.
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
        self.attached = start.attach
        self.spill_dir = live.spill_dir or Path.cwd() / SPILL_DIR
        self.patience = Patience(uri, live.offline_after_s)
        self.status = RunStatus.to_string(RunStatus.RUNNING)
        self.signals_at_start = signals_sent()  # a signal turned into another error: KILLED
        self.model_uri: str | None = None  # set by log_model
        self.spill: Spill | None = None  # set once the store stayed away too long
        self.client = MlflowClient(uri)
        disk.quiet_mlflow_when_full()
        tags = self._tags(start)
        why = live.start_offline
        if why is None:
            try:
                self.patience.call(lambda: self._begin(experiment, start, tags, live))
            except StoreAway as away:
                why = str(away)
        if why is not None:
            self._begin_offline(experiment, start, tags, why)
        owned = self.spill is None and not self.attached
        beat = (live.heartbeat_s, self._heartbeat) if owned else None
        self.writer = MetricWriter(self.client, self.run_id, heartbeat=beat)
        self._offline_lock = threading.Lock()
        self._closed = threading.Event()
        if self.spill is not None:
            self.writer.abandon(sink=self.spill.metrics)
        elif self.patience.limit_s is not None:
            threading.Thread(target=self._watch, name="mlflow-watch", daemon=True).start()

    def _tags(self, start: RunStart) -> dict[str, str]:
        """The run's tags, secrets masked: the caller's, the owning process, the name, the
        parent, and where a spill would go (so a spilled run is not taken for a dead one)."""
        tags = {k: redact(k, str(v)) for k, v in start.tags.items()}
        self.run_name = None
        if start.attach:  # its owner keeps it alive and ends it: no liveness of ours
            return tags
        tags[tag_keys.PROCESS] = stale.process_token()
        tags[tag_keys.HEARTBEAT] = str(int(time.time()))
        tags[tag_keys.SPILL_DIR] = str(self.spill_dir.absolute())
        if start.run_name:  # masked before it is cut, so no part of a secret is left unmatched
            tags[MLFLOW_RUN_NAME] = redact_text(start.run_name)[:RUN_NAME_CHARS]
        self.run_name = tags.get(MLFLOW_RUN_NAME)
        if start.parent_run_id:
            tags[MLFLOW_PARENT_RUN_ID] = start.parent_run_id
        return tags

    def _begin(self, experiment: str, start: RunStart, tags: dict[str, str], live: Liveness):
        """Create the run (or take the one ``mlflow run`` made), after ending dead runs."""
        ensure_ready(self.uri)
        if start.attach:
            self.run = self.client.get_run(start.run_id)
            self.experiment_id, self.run_id = self.run.info.experiment_id, start.run_id
            for key, value in tags.items():
                self.client.set_tag(self.run_id, key, value)
            return
        self.experiment_id = experiment_id(self.client, experiment, start.artifact_location)
        launcher = launcher_run(self.client, start.run_id)
        if records_into(launcher, self.experiment_id):
            self.experiment_id = launcher.info.experiment_id
            stale.end_dead_runs(self.client, self.experiment_id, live.stale_after_s)
            for key, value in tags.items():
                self.client.set_tag(launcher.info.run_id, key, value)
            self.run = launcher
        else:
            stale.end_dead_runs(self.client, self.experiment_id, live.stale_after_s)
            self.run = create_run(self.client, self.experiment_id, experiment, tags, launcher)
        self.run_id = self.run.info.run_id

    def _begin_offline(self, experiment: str, start: RunStart, tags: dict[str, str], why: str):
        """A run the store has not seen: everything goes to the spill, whose replay creates it
        (or records into the run ``mlflow run`` made)."""
        self.run_id = start.run_id or uuid.uuid4().hex
        self.experiment_id = None
        create = None
        if not start.run_id:
            create = {
                "experiment": experiment,
                "artifact_location": start.artifact_location,
                "tags": tags,
                "start_time": int(time.time() * 1000),
            }
        self.spill = Spill(self.spill_dir, self.uri, self.run_id, create=create)
        print(
            f"MLflow store {redact_text(self.uri)}: {why}; recording into {self.spill.folder}; "
            f"write it to MLflow later with: losslab-replay {self.spill.folder}",
            file=sys.stderr,
        )

    def _heartbeat(self) -> None:
        self.client.set_tag(self.run_id, tag_keys.HEARTBEAT, str(int(time.time())))

    def __enter__(self) -> TrackedRun:
        os.environ.pop(MLFLOW_RUN_ID_ENV, None)  # an inherited id would redirect fluent calls
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
        if interrupted:
            self.patience.interrupted = True  # the store gets seconds, not minutes
        before = signals_sent()
        with deferred_interrupts(self.patience.hurry):
            self._close(exc_type, exc)
        late = sent_since(before)
        if late is not None and not interrupted:  # it came while the run closed
            raise interruption(late)

    def _close(self, exc_type, exc) -> None:
        """Store (or spill) what is queued, then the outcome and the final status. A pruned
        trial logs the value it reported last as ``pruned_at_value`` (see
        :class:`losslab.search.pruning.BestSoFarPruningCallback`): one partly trained fold's
        best epoch, not an ``objective`` to sort beside those of complete trials."""
        pruned = exc_type is not None and _is_pruned(exc_type)
        reported = getattr(exc, "objective", None) if pruned else None
        if reported is not None and math.isfinite(reported):
            self.log_metrics({"pruned_at_value": reported})
        self.sync()
        self._closed.set()
        self.writer.close(timeout=1 if self.offline else None)
        if self.attached:
            self._say_where_spilled()
            return
        if exc_type is None or pruned:
            status = "FINISHED"
        elif (
            issubclass(exc_type, KeyboardInterrupt) or sent_since(self.signals_at_start) is not None
        ):
            status = "KILLED"
        else:
            status = "FAILED"
        if pruned:
            self.set_tags({tag_keys.PRUNED: "true", tag_keys.PRUNED_REASON: str(exc)})
        elif exc is not None:
            self.set_tags({tag_keys.ERROR: f"{exc_type.__name__}: {exc}"[:5000]})
        self._mark(self._outcome(exc_type, status))
        self._call(
            lambda: self.client.set_terminated(self.run_id, status),
            lambda spill: spill.status(status),
        )
        self.status = status
        self._say_where_spilled()

    def _say_where_spilled(self) -> None:
        if self.spill is not None and (self.spill.held or self.spill.lost_files):
            print(
                f"{disk.describe(self.spill.folder)}: {len(self.spill.held)} records and "
                f"{self.spill.lost_files} files of run {self.run_id} could not be kept",
                file=sys.stderr,
            )
        if self.spill is not None and self.spill.path.exists():
            print(
                f"MLflow store {redact_text(self.uri)} {self._away()}: run {self.run_id} kept in "
                f"{self.spill.folder}; write it to MLflow later with: "
                f"losslab-replay {self.spill.folder}",
                file=sys.stderr,
            )

    @staticmethod
    def _outcome(exc_type, status: str) -> str:
        return "PRUNED" if exc_type is not None and _is_pruned(exc_type) else status

    def _mark(self, outcome: str) -> None:
        """``losslab.outcome`` for a column of the runs list, and a marker at the front of the
        name of a run that did not finish (MLflow shows a pruned trial as Finished)."""
        tags = {tag_keys.OUTCOME: outcome.lower()}
        if self.run_name and marked(self.run_name, outcome) != self.run_name:
            tags[MLFLOW_RUN_NAME] = marked(self.run_name, outcome)[:RUN_NAME_CHARS]
        self.set_tags(tags)

    # -- a store that went away -------------------------------------------------------------
    @property
    def offline(self) -> bool:
        return self.spill is not None

    def sync(self) -> bool:
        """Wait until every queued point is stored; go offline if the store stays away."""
        if self.offline:
            return False
        counted_from = 0.0
        patience = self.patience
        while not self.writer.wait_stored(patience.limit_s, patience.hurry, counted_from):
            if self.writer.failing or not patience.still_there():
                self._go_offline(self._why_away())
                return False
            counted_from = time.monotonic()  # slow to answer, but there
        return True

    def _watch(self, every_s: float = 1.0) -> None:
        """While training runs, the metric writer may be stuck in one request for minutes:
        once the store has been away for the allowed time, the run goes offline from here."""
        writer, patience = self.writer, self.patience
        while not self._closed.wait(every_s) and self.spill is None:
            if patience.due(writer.stalled_since) and (
                writer.failing or not patience.still_there()
            ):
                self._go_offline(self._why_away())

    def _away(self) -> str:
        return "full" if disk.is_full(self.writer.last_error) else "unreachable"

    def _why_away(self) -> str:
        """Why the run stops waiting for its store: its disk is full, or it did not answer."""
        if disk.is_full(self.writer.last_error) and not self.patience.hurry.is_set():
            return f"{disk.store_full(self.uri)} for {self.patience.limit_s:g}s"
        return self.patience.why()

    def _go_offline(self, why: str) -> Spill:
        with self._offline_lock:  # the watch thread and the training thread may both ask
            if self.spill is None:
                spill = Spill(self.spill_dir, self.uri, self.run_id)
                spill.metrics(self.writer.abandon(sink=spill.metrics))
                self.spill = spill
                log.warning(
                    "MLflow store %s: %s; recording into %s",
                    redact_text(self.uri),
                    why,
                    spill.folder,
                )
        return self.spill

    def _call(self, online: Callable[[], Any], offline: Callable[[Spill], Any]) -> Any:
        """``online()`` against the store; into the spill if it is (or becomes) unreachable."""
        if self.spill is None:
            try:
                return self.patience.call(online)
            except StoreAway as away:
                self._go_offline(str(away))
            except Exception as err:
                if disk.is_full(err):  # the store's file, or its artifacts' folder
                    self._go_offline(f"{type(err).__name__}: {disk.store_full(self.uri)}")
                elif unreachable(err):
                    self._go_offline(f"unreachable ({type(err).__name__})")
                else:
                    raise
        return offline(self.spill)

    # -- what a run records ---------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Flattened, redacted params, in requests of at most 100."""
        flat = flatten(redact_tree(dict(params)))
        clean = {k: str(v)[:MAX_PARAM_VAL_LENGTH] for k, v in flat.items()}
        entries = [Param(k, v) for k, v in clean.items()]
        self._call(
            lambda: log_in_batches(self.client, self.run_id, params=entries),
            lambda spill: spill.params(clean),
        )

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

    def log_model(self, model, input_example, encoding=None) -> str | None:
        """The model with signature and input example: through MLflow's TensorFlow flavour,
        or, with ``encoding`` (of the raw rows ``input_example`` shows), as a model that takes
        raw rows (:func:`losslab.tracking.model.log_raw_rows_model`)."""

        def online() -> str:
            self.model_uri = log_keras_model(
                self.uri, self.run_id, self.experiment_id, model, input_example, encoding
            )
            return self.model_uri

        return self._call(online, lambda spill: spill.model(model, input_example, encoding))
