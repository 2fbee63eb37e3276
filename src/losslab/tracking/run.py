"""One MLflow run per training job: creation under its sweep's parent, params, artifacts,
the model, and an honest final status.

Everything goes through ``MlflowClient``; the run is also made the fluent active run so
MLflow's model flavour links the logged model to it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import yaml
from mlflow import MlflowClient
from mlflow.entities import Param, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from losslab.tracking.redact import flatten, redact_text, redact_tree
from losslab.tracking.writer import MetricWriter

MLFLOW_RUN_ID_ENV = "MLFLOW_RUN_ID"  # set by `mlflow run` for the run it made
MLFLOW_TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
MAX_PARAMS_PER_BATCH = 100
MAX_PARAM_LENGTH = 6000


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


class TrackedRun:
    """Context manager for one job's MLflow run.

    On a clean exit the run is FINISHED; on an exception FAILED with the error as the tag
    ``losslab.error``; on Ctrl-C KILLED; stopped by an Optuna pruner FINISHED and tagged
    ``losslab.pruned``. Queued metrics are flushed first in every case.
    """

    def __init__(
        self,
        uri: str,
        experiment: str,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        artifact_location: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self.uri = uri
        self.client = MlflowClient(uri)
        all_tags = {k: redact_text(str(v)) for k, v in (tags or {}).items()}
        if run_name:
            all_tags[MLFLOW_RUN_NAME] = run_name
        if parent_run_id:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        if run_id:  # a run made for us, e.g. by `mlflow run`
            self.run = self.client.get_run(run_id)
            self.experiment_id = self.run.info.experiment_id
            for key, value in all_tags.items():
                self.client.set_tag(run_id, key, value)
        else:
            self.experiment_id = experiment_id(self.client, experiment, artifact_location)
            self.run = self.client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
        self.run_id = self.run.info.run_id
        self.writer = MetricWriter(self.client, self.run_id)
        self.status = RunStatus.to_string(RunStatus.RUNNING)
        self.model_uri: str | None = None  # set by log_model

    def __enter__(self) -> TrackedRun:
        # MLflow's model flavours log to the global tracking URI, which set_tracking_uri also
        # exports as MLFLOW_TRACKING_URI: restore both on exit so later runs are unaffected
        self._previous_uri = os.environ.get(MLFLOW_TRACKING_URI_ENV)
        mlflow.set_tracking_uri(self.uri)
        os.environ.pop(MLFLOW_RUN_ID_ENV, None)  # an inherited id would hijack start_run
        mlflow.start_run(run_id=self.run_id)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.writer.close(timeout=60)
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
            self.client.set_tag(
                self.run_id, "losslab.error", redact_text(f"{exc_type.__name__}: {exc}")[:5000]
            )
        mlflow.end_run(status=status)
        mlflow.set_tracking_uri(self._previous_uri)
        self.status = status

    # -- what a run records ---------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Flattened, redacted params, in requests of at most 100."""
        flat = flatten(redact_tree(dict(params)))
        entries = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in flat.items()]
        for i in range(0, len(entries), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=entries[i : i + MAX_PARAMS_PER_BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        self.writer.add(step, dict(metrics))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, redact_text(str(value)))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_artifacts(self, folder: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(folder), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, redact_text(text), artifact_file)

    def log_yaml(self, data: Any, artifact_file: str) -> None:
        text = yaml.safe_dump(redact_tree(data), sort_keys=False)
        self.client.log_text(self.run_id, text, artifact_file)

    def log_model(self, model, input_example) -> str:
        """The model through MLflow's TensorFlow flavour, with signature and input example.

        The inference graph is logged uncompiled, so it loads anywhere without losslab's
        (or the user's) custom loss. (``mlflow.keras.log_model`` writes the input example
        before creating its folder and fails, so the TensorFlow flavour is used.)
        """
        import keras
        import mlflow.tensorflow
        from mlflow.models import infer_signature

        inference = keras.Model(model.inputs, model.outputs, name=model.name)
        signature = infer_signature(input_example, model.predict(input_example, verbose=0))
        info = mlflow.tensorflow.log_model(
            inference, name="model", signature=signature, input_example=input_example
        )
        self.model_uri = info.model_uri
        return info.model_uri
