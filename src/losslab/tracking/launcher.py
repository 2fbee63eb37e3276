"""The run ``mlflow run`` makes before it starts ``train.py``, and where losslab records.

``mlflow run .`` creates a run, passes its id in ``MLFLOW_RUN_ID`` and puts it in the
experiment named by ``--experiment-name`` (or ``MLFLOW_EXPERIMENT_NAME``), else in MLflow's
"Default" experiment. A run in an experiment the user chose is recorded into as it is. One in
"Default" only means no experiment was named, while ``python train.py`` records into the
configured one (``task_name``, ``losslab`` by default): so the run is made there instead,
carrying the project's source tags, and the run in "Default" says where it went.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities import Run

DEFAULT_EXPERIMENT_ID = "0"
RECORDED_IN_TAG = "losslab.recorded_in"
NOTE_TAG = "mlflow.note.content"
PROJECT_TAG_PREFIXES = ("mlflow.source.", "mlflow.project.", "mlflow.gitRepoURL")


def made_for_us(client: MlflowClient, run_id: str | None, experiment_id: str) -> Run | None:
    """The run ``mlflow run`` made to record into; None when there is none, or when it lies
    in "Default" while ``experiment_id`` (the configured experiment) is another one."""
    if not run_id:
        return None
    run = client.get_run(run_id)
    in_default = run.info.experiment_id == DEFAULT_EXPERIMENT_ID
    return None if in_default and experiment_id != DEFAULT_EXPERIMENT_ID else run


def project_tags(launcher: Run) -> dict[str, str]:
    """How ``mlflow run`` started the command (project URI, entry point, commit)."""
    tags = launcher.data.tags
    return {k: v for k, v in tags.items() if k.startswith(PROJECT_TAG_PREFIXES)}


def point_to(client: MlflowClient, launcher_id: str, run: Run, experiment: str) -> None:
    """Tag the run left in "Default" with where the command recorded instead."""
    client.set_tag(launcher_id, RECORDED_IN_TAG, run.info.run_id)
    client.set_tag(
        launcher_id,
        NOTE_TAG,
        f"Recorded in experiment {experiment!r}, run {run.info.run_id}: `mlflow run` was "
        "given no experiment (add --experiment-name to record into this run instead).",
    )
