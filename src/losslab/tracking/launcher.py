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

from losslab.tracking import tag_keys

DEFAULT_EXPERIMENT_ID = "0"
NOTE_TAG = "mlflow.note.content"
PROJECT_TAG_PREFIXES = ("mlflow.source.", "mlflow.project.", "mlflow.gitRepoURL")


def launcher_run(client: MlflowClient, run_id: str | None) -> Run | None:
    """The run ``mlflow run`` made for this command (``MLFLOW_RUN_ID``), if any."""
    return client.get_run(run_id) if run_id else None


def records_into(launcher: Run | None, experiment_id: str) -> bool:
    """Whether to record into ``launcher``: not when it lies in "Default" while
    ``experiment_id`` (the configured experiment) is another one."""
    if launcher is None:
        return False
    in_default = launcher.info.experiment_id == DEFAULT_EXPERIMENT_ID
    return not in_default or experiment_id == DEFAULT_EXPERIMENT_ID


def create_run(
    client: MlflowClient,
    experiment_id: str,
    experiment: str,
    tags: dict[str, str],
    launcher: Run | None,
) -> Run:
    """A new run named by its ``mlflow.runName`` tag; made in place of ``launcher``, it
    carries how ``mlflow run`` started the command (project URI, entry point, commit) and
    the launcher says where the record went."""
    if launcher is not None:
        started = launcher.data.tags.items()
        tags = {**tags, **{k: v for k, v in started if k.startswith(PROJECT_TAG_PREFIXES)}}
    run = client.create_run(experiment_id, tags=tags)
    if launcher is not None:
        _point_to(client, launcher.info.run_id, run, experiment)
    return run


def _point_to(client: MlflowClient, launcher_id: str, run: Run, experiment: str) -> None:
    """Tag the run left in "Default" with where the command recorded instead."""
    client.set_tag(launcher_id, tag_keys.RECORDED_IN, run.info.run_id)
    client.set_tag(
        launcher_id,
        NOTE_TAG,
        f"Recorded in experiment {experiment!r}, run {run.info.run_id}: `mlflow run` was "
        "given no experiment (add --experiment-name to record into this run instead).",
    )
