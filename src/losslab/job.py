"""The Hydra task: one job of a run or a sweep, from the composed config to its objective.

What Hydra knows about the job (its name, number, overrides, the sweep folder, the sweeper's
pruner) is read here and handed to :func:`losslab.train.train` as plain values; a job an Optuna
sweep launched trains with its trial's pruning callback and heartbeat.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from losslab import backend
from losslab import config as config_lib
from losslab.train import JobInfo, train

log = logging.getLogger(__name__)


def job_info() -> JobInfo:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return JobInfo()
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    return JobInfo(
        name=hc.job.name,
        num=hc.job.num if multirun else None,
        overrides=list(hc.overrides.task),
        sweep_dir=hc.sweep.dir if multirun else None,
        hydra_dir=str(Path(hc.runtime.output_dir) / hc.output_subdir) if hc.output_subdir else None,
        pruner=hc.sweeper.get("pruner") if multirun else None,
    )


def main(cfg: DictConfig) -> Any:
    """Entry point for ``@hydra.main``: the objective value for sweepers.

    A job launched by the Optuna sweeper reports its objective every epoch and may be pruned:
    it then raises ``optuna.TrialPruned``, as an Optuna objective function does. With several
    objectives it returns one value each.
    """
    from losslab.cli import single_run_errors
    from losslab.search import trial as search_trial

    job = job_info()
    trial = search_trial.current(job.pruner)
    if trial is None:
        with single_run_errors(job.sweep_dir is None):
            return train(cfg, job).objective
    import optuna

    conf = config_lib.to_objects(cfg)
    backend.start()  # the pruning callback imports Keras
    import keras

    keras.utils.clear_session()  # a sweep's worker runs trial after trial in one process
    job.tags.update(trial.tags())
    maximize = conf.directions[0] == "maximize"
    callbacks = trial.callbacks(conf.objectives[0], maximize, conf.trainer.early_stopping)
    try:
        with trial:
            result = train(conf, job, callbacks, on_run_start=trial.link_run)
            trial.record(result.metrics, result.degenerate)
            return result.objective
    except optuna.TrialPruned as pruned:  # the sweeper ends the trial PRUNED
        log.info("trial %d pruned: %s", trial.ref.number, pruned)
        raise
