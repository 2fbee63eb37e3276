"""Hydra callback: one MLflow parent run per multirun, ended when the sweep ends.

It is the only owner of the parent: it creates it (an Optuna sweep's study named in its tags),
gives its id to the jobs through the sweep folder (:mod:`losslab.tracking.sweep`), and at the
end writes the study's report, read from the study's storage (:mod:`losslab.search.report`).
The sweeper itself talks to Optuna and the launcher only.

Hydra calls ``on_multirun_end`` only when the sweep returns; a sweep stopped by Ctrl-C or an
error would leave its parent RUNNING. Each parent this process opens is therefore kept in
:data:`OPEN_PARENTS` until it is ended, and :func:`end_open_parents` (called by
:func:`losslab.cli.run_app` for whatever ended the command) ends the rest KILLED or FAILED.

Each sweep command gets a parent of its own, also when it continues a study an earlier command
began (its tag ``losslab.continues`` names that command's parent): a run records one
execution, and the best params a parent logs at its end are then never changed.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from losslab.tracking import tag_keys
from losslab.tracking.sweep import read_parent_id, write_parent_id

log = logging.getLogger(__name__)


class MlflowParentRun(Callback):
    """Creates the sweep's parent run on ``on_multirun_start``; jobs nest under it."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.client = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not HydraConfig.initialized():
            HydraConfig.instance().set_config(config)
        if not config.tracking.enabled:
            return
        from losslab.tracking.reachable import store_error

        why = store_error(config.tracking.uri)
        if why is not None:  # tracking.if_unreachable=offline: each job spills on its own
            log.warning("no MLflow parent run for this sweep: %s", why)
            return
        from mlflow import MlflowClient
        from mlflow.entities import RunTag

        from losslab.tracking import stale
        from losslab.tracking.launcher import create_run, launcher_run, records_into
        from losslab.tracking.run import MLFLOW_RUN_ID_ENV, experiment_id
        from losslab.tracking.store import ensure_ready, keep_credentials_off_stdout

        ensure_ready(config.tracking.uri)
        self.client = MlflowClient(config.tracking.uri)
        experiment = config.tracking.experiment or config.task_name
        exp = experiment_id(self.client, experiment, config.tracking.artifact_location)
        keep_credentials_off_stdout(config.tracking.uri)
        stale.end_dead_runs(self.client, exp, config.tracking.stale_after_s)
        extra = {tag_keys.PROCESS: stale.process_token()}
        launcher = launcher_run(self.client, os.environ.get(MLFLOW_RUN_ID_ENV))
        if records_into(launcher, exp):  # `mlflow run` made the parent for us
            tags = {**_study_tags(config), **extra}
            self.client.log_batch(launcher.info.run_id, tags=[RunTag(*t) for t in tags.items()])
            self._opened(config, launcher.info.run_id)
            return
        previous = read_parent_id(config.hydra.sweep.dir)  # a study this command continues
        if previous:
            extra[tag_keys.CONTINUES] = previous
        tags = {**_parent_tags(config), **_study_tags(config), **extra}
        run = create_run(self.client, exp, experiment, tags, launcher)
        self._opened(config, run.info.run_id)
        log.info("MLflow parent run %s for sweep %s", self.run_id, config.hydra.sweep.dir)

    def _opened(self, config: DictConfig, run_id: str) -> None:
        """Share ``run_id`` with the jobs, and end it with the command if the sweep does not."""
        self.run_id = run_id
        OPEN_PARENTS[run_id] = OpenParent(config.tracking.uri, _study_location(config))
        write_parent_id(config.hydra.sweep.dir, run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.client is not None and self.run_id is not None and _detached(config):
            self._leave_open(config)
        elif self.client is not None and self.run_id is not None:
            parent = OPEN_PARENTS.get(self.run_id)  # kept there until ended: Ctrl-C meanwhile
            if parent is not None:
                parent.record_study(self.client, self.run_id)
            self.client.set_terminated(self.run_id, "FINISHED")
            OPEN_PARENTS.pop(self.run_id, None)
            ENDED.append((config.tracking.uri, self.run_id))

    def _leave_open(self, config: DictConfig) -> None:
        """A detached sweep's parent stays RUNNING for its workers; its study remembers it,
        so ``losslab sweep status`` ends it once the study is done. Without this command's
        process token, no other process takes it for a dead run (:mod:`losslab.tracking.stale`)."""
        import optuna

        from losslab.search.status import remember_parent
        from losslab.search.storage import open_storage

        OPEN_PARENTS.pop(self.run_id, None)
        self.client.delete_tag(self.run_id, tag_keys.PROCESS)
        url, name = _study_location(config)
        study = optuna.load_study(study_name=name, storage=open_storage(url))
        remember_parent(study, self.run_id, config.tracking.uri)
        log.info("MLflow parent run %s stays open while the workers run", self.run_id)


def _detached(config: DictConfig) -> bool:
    """A sweep in worker mode that returned once its workers were submitted."""
    sweeper = config.hydra.sweeper
    return _study_location(config) is not None and bool(
        sweeper.get("workers") and sweeper.get("detach")
    )


def _parent_tags(config: DictConfig) -> dict[str, str]:
    """Name, type, folder, the overrides (masked) and which of them all jobs share."""
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    from losslab.tracking import names
    from losslab.tracking.redact import redact_text

    overrides = [str(o) for o in OmegaConf.to_container(config.hydra.overrides.task)]
    shared = names.shared_overrides(overrides)
    return {
        MLFLOW_RUN_NAME: redact_text(_parent_name(config, overrides, shared)),
        tag_keys.RUN_TYPE: "sweep",
        tag_keys.SWEEP_DIR: config.hydra.sweep.dir,
        tag_keys.OVERRIDES: redact_text(" ".join(overrides)),
        tag_keys.SHARED_OVERRIDES: json.dumps([redact_text(o) for o in shared]),
        tag_keys.SWEEPER: config.hydra.sweeper._target_,
        tag_keys.LAUNCHER: config.hydra.launcher._target_,
    }


def _parent_name(config: DictConfig, overrides: list[str], shared: list[str]) -> str:
    """``sweep <study>`` for an Optuna sweep, ``sweep <what it sweeps>`` for Hydra's."""
    from losslab.tracking import names

    study = config.hydra.sweeper.get("study_name")
    swept = names.short(o for o in overrides if o not in shared)
    return f"sweep {study or swept or config.hydra.sweep.dir.rstrip('/').rsplit('/', 1)[-1]}"


def _study_location(config: DictConfig) -> tuple[str, str] | None:
    """Storage URL and name of an Optuna sweep's study; None for other sweepers."""
    from losslab.search import study

    return study.location(config) if study.is_optuna_sweep(config) else None


def _study_tags(config: DictConfig) -> dict[str, str]:
    location = _study_location(config)
    if location is None:
        return {}
    from losslab.search.report import study_tags

    return study_tags(config.hydra.sweeper, *location)


@dataclass
class OpenParent:
    """A parent run not ended yet: its store, and the study it reports on (if any)."""

    uri: str
    study: tuple[str, str] | None  # storage URL, study name

    def record_study(self, client: Any, run_id: str) -> None:
        """The study's report on the parent; a report that fails costs a warning, not the
        sweep's outcome."""
        if self.study is None:
            return
        from losslab.search.report import record_study

        try:
            record_study(client, run_id, *self.study)
        except Exception as err:
            log.warning("could not record the study in MLflow: %s", err)


OPEN_PARENTS: dict[str, OpenParent] = {}  # run id -> parents not ended yet
ENDED: list[tuple[str, str]] = []  # (tracking URI, run id) of the parents this process ended


def end_open_parents(error: BaseException) -> None:
    """End KILLED (Ctrl-C) or FAILED the parents ``error`` left open, then report their study
    so far; a second Ctrl-C while ending does not break this off. A store that does not answer
    within seconds leaves the parent to the next sweep's dead-run check."""
    if not OPEN_PARENTS:
        return
    from mlflow import MlflowClient

    from losslab.tracking.patience import INTERRUPTED_S, Patience, StoreAway
    from losslab.tracking.redact import redact_text
    from losslab.tracking.run import deferred_interrupts

    status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
    reason = redact_text(f"{type(error).__name__}: {error}")[:5000]
    while OPEN_PARENTS:
        run_id, parent = OPEN_PARENTS.popitem()
        client, patience = MlflowClient(parent.uri), Patience(parent.uri, INTERRUPTED_S)

        def end(client=client, run_id=run_id) -> bool:
            if client.get_run(run_id).info.status != "RUNNING":
                return False
            client.set_tag(run_id, tag_keys.ERROR, reason)
            client.set_terminated(run_id, status)
            return True

        with deferred_interrupts(patience.hurry):
            try:
                ended = patience.call(end)
            except (StoreAway, OSError) as err:
                log.warning("sweep parent run %s left open: %s", run_id, err)
                continue
            if ended:  # the trials so far, once the status is safe; bounded like the rest
                try:
                    patience.call(functools.partial(parent.record_study, client, run_id))
                except (StoreAway, OSError) as err:
                    log.warning("sweep parent run %s: study not reported: %s", run_id, err)
