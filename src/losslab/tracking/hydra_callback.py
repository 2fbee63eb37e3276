"""Hydra callback: one MLflow parent run per multirun, ended when the sweep ends."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from losslab.config import ConfigError
from losslab.tracking.store import keep_credentials_off_stdout
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
        from losslab.search import study

        if study.is_optuna_sweep(config):
            try:
                study.preflight(config)
            except ConfigError as err:  # Hydra only warns about a callback's exceptions
                print(f"error: {err}", file=sys.stderr)
                raise SystemExit(2) from None
        if not config.tracking.enabled:
            return
        from mlflow import MlflowClient
        from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

        from losslab.tracking import stale
        from losslab.tracking.redact import redact_text
        from losslab.tracking.run import MLFLOW_RUN_ID_ENV, experiment_id
        from losslab.tracking.store import ensure_ready

        sweep_dir = config.hydra.sweep.dir
        ensure_ready(config.tracking.uri)
        self.client = MlflowClient(config.tracking.uri)
        exp = experiment_id(
            self.client,
            config.tracking.experiment or config.task_name,
            config.tracking.artifact_location,
        )
        keep_credentials_off_stdout(config.tracking.uri)
        stale.end_dead_runs(self.client, exp, config.tracking.stale_after_s)
        owner = {stale.PROCESS_TAG: stale.process_token()}
        existing = read_parent_id(sweep_dir) or os.environ.get(MLFLOW_RUN_ID_ENV)
        if existing:  # a resumed sweep keeps its parent; `mlflow run` made one for us
            self.run_id = existing
            self.client.update_run(existing, status="RUNNING")
            self.client.set_tag(existing, stale.PROCESS_TAG, owner[stale.PROCESS_TAG])
            write_parent_id(sweep_dir, existing)
            return
        overrides = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
        name = f"sweep-{sweep_dir.rstrip('/').rsplit('/', 1)[-1]}"
        run = self.client.create_run(
            exp,
            run_name=name,
            tags={
                MLFLOW_RUN_NAME: name,
                "losslab.run_type": "sweep",
                "losslab.sweep_dir": sweep_dir,
                "losslab.overrides": redact_text(" ".join(map(str, overrides))),
                "losslab.sweeper": config.hydra.sweeper._target_,
                "losslab.launcher": config.hydra.launcher._target_,
                **owner,
            },
        )
        self.run_id = run.info.run_id
        write_parent_id(sweep_dir, self.run_id)
        log.info("MLflow parent run %s for sweep %s", self.run_id, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.client is not None and self.run_id is not None:
            self.client.set_terminated(self.run_id, "FINISHED")
