"""A sweep job's view of its Optuna trial, which the sweeper created in another process.

The sweeper passes the trial number, study name and storage through ``hydra.job.env_set``,
which every Hydra launcher applies where the job runs (same process, joblib worker, submitit
or Slurm node). The job opens the same storage, reports its objective after each epoch through
optuna-integration's ``KerasPruningCallback`` (or, when the objective is the restored best
epoch, the best value so far) and stops when the pruner says so, raising
``optuna.TrialPruned``; the sweeper then ends the trial PRUNED. Nothing here runs unless
those variables are set.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from losslab.tracking import tag_keys

if TYPE_CHECKING:
    from losslab.config import EarlyStoppingConfig

log = logging.getLogger(__name__)

TRIAL_ENV = "LOSSLAB_OPTUNA_TRIAL"
STUDY_ENV = "LOSSLAB_OPTUNA_STUDY"
STORAGE_ENV = "LOSSLAB_OPTUNA_STORAGE"
HEARTBEAT_ENV = "LOSSLAB_OPTUNA_HEARTBEAT"


@dataclass(frozen=True)
class TrialRef:
    """Where a job's trial lives."""

    number: int
    study_name: str
    storage: str
    heartbeat_s: int | None = None

    def env(self) -> dict[str, str]:
        env = {TRIAL_ENV: str(self.number), STUDY_ENV: self.study_name, STORAGE_ENV: self.storage}
        if self.heartbeat_s:
            env[HEARTBEAT_ENV] = str(self.heartbeat_s)
        return env


def from_env() -> TrialRef | None:
    number = os.environ.get(TRIAL_ENV)
    if number is None:
        return None
    beat = os.environ.get(HEARTBEAT_ENV)
    return TrialRef(
        int(number), os.environ[STUDY_ENV], os.environ[STORAGE_ENV], int(beat) if beat else None
    )


class JobTrial:
    """The running trial of this job: pruning callback, heartbeat, link to the MLflow run.

    Use it as a context manager around training: while inside, it beats for its trial.
    """

    def __init__(self, ref: TrialRef, pruner: Any = None) -> None:
        import optuna

        from losslab.search.heartbeat import Heartbeat
        from losslab.search.storage import open_storage

        self.ref = ref
        self._storage = storage = open_storage(ref.storage)
        study = optuna.load_study(study_name=ref.study_name, storage=storage, pruner=pruner)
        study_id = storage.get_study_id_from_name(ref.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, ref.number)
        self.multi_objective = len(study.directions) > 1
        self.trial = optuna.trial.Trial(study, trial_id)
        beat = ref.heartbeat_s
        self._heartbeat = Heartbeat(storage, [trial_id], beat) if beat else None

    def __enter__(self) -> JobTrial:
        if self._heartbeat is not None:
            self._heartbeat.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._heartbeat is not None:
            self._heartbeat.__exit__(*exc)
        # its connections closed now, not when the trial's objects are collected: a worker
        # runs one job after another, each with a storage of its own
        engine = getattr(self._storage, "engine", None)
        if engine is not None:
            engine.dispose()

    def callbacks(
        self, objective: str, maximize: bool, early_stopping: EarlyStoppingConfig | None = None
    ) -> list[Any]:
        """The pruning callback; with ``early_stopping`` restoring the objective's best epoch,
        it reports the best value so far, which is what the trial returns."""
        from losslab.objectives import prunable
        from losslab.search.pruning import BestSoFarPruningCallback

        if self.multi_objective:
            return []  # Optuna prunes single-objective studies only
        if not prunable(objective):
            log.warning("objective %s is not an epoch metric: trial is not pruned", objective)
            return []
        best_so_far = early_stopping is not None and early_stopping.restores(objective)
        return [BestSoFarPruningCallback(self.trial, objective, maximize, best_so_far)]

    def tags(self) -> dict[str, str]:
        return {
            tag_keys.STUDY_NAME: self.ref.study_name,
            tag_keys.TRIAL_NUMBER: str(self.ref.number),
        }

    def record(self, metrics: dict[str, float], degenerate: str | None = None) -> None:
        """What the sweep ranks ties by (:mod:`losslab.search.ties`) and the test figures it
        prints once for the trial it chooses, from the job's figures; ``degenerate``: why
        the trial's model is no model, so the sweep never chooses it."""
        from losslab.search.ties import DEGENERATE, REPORTED, TIE_BREAKER

        for key in (TIE_BREAKER, *REPORTED):
            if key in metrics:
                self.trial.set_user_attr(key, float(metrics[key]))
        if degenerate is not None:
            self.trial.set_user_attr(DEGENERATE, degenerate)

    def link_run(self, tracked: Any) -> None:
        """Let the study point at the MLflow run that records this trial."""
        self.trial.set_user_attr("mlflow_run_id", tracked.run_id)


def current(pruner_config: Any = None) -> JobTrial | None:
    """This job's trial when an Optuna sweep launched it, with the sweep's pruner."""
    ref = from_env()
    if ref is None:
        return None
    pruner = None
    if pruner_config is not None:
        from hydra.utils import instantiate

        pruner = instantiate(pruner_config)
    return JobTrial(ref, pruner)
