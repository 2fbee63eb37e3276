"""What a sweep's MLflow parent run records about its Optuna study.

At the start: study name, storage (secrets masked), sampler, pruner and search space. At the
end: the best trial's value (metric ``best_value``) and params (params under the children's
keys, so the parent's row lines up with its children's columns, tags ``best.<param>`` and
``optuna/best_trial.json``), every trial as ``optuna/trials.csv``, the optimization history
with pruned and failed trials, and Optuna's parameter-importance plot. Each sweep command has
a parent of its own (a resumed study's next command gets a new one), so the params it logs
once at its end are never changed.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from mlflow import MlflowClient
from mlflow.entities import Param

from losslab.search.history import plot_history
from losslab.search.study import IDENTITY_ATTR
from losslab.tracking.redact import redact_text

log = logging.getLogger(__name__)


def log_study_start(
    client: MlflowClient,
    run_id: str,
    study: optuna.Study,
    storage_url: str,
    search_space: Mapping[str, Any],
    n_trials: int,
) -> None:
    tags = {
        "optuna.study_name": study.study_name,
        "optuna.storage": redact_text(storage_url),
        "optuna.sampler": type(study.sampler).__name__,
        "optuna.pruner": type(study.pruner).__name__,
        "optuna.directions": ",".join(d.name.lower() for d in study.directions),
        "optuna.n_trials": str(n_trials),
    }
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    space = {k: repr(v) for k, v in search_space.items()}
    client.log_text(run_id, json.dumps(space, indent=2), "optuna/search_space.json")


def _objective_name(study: optuna.Study) -> str:
    identity = study.user_attrs.get(IDENTITY_ATTR) or {}
    return identity.get("objective", {}).get("name", "objective")


def _importances(study: optuna.Study, path: Path) -> Path | None:
    """Optuna's parameter-importance plot; None when the study has too few trials for it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_param_importances

    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            axes = plot_param_importances(study, target=target)
    except (ValueError, RuntimeError, ZeroDivisionError) as err:
        log.info("optuna param_importances plot skipped: %s", err)
        return None
    axes.figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(axes.figure)
    return path


def param_key(override_key: str) -> str:
    """The MLflow key of a swept override: ``+tags.w`` and ``~x`` are not valid MLflow keys."""
    return override_key.lstrip("+~")


def best_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    try:
        return study.best_trials
    except ValueError:
        return []


def log_study_end(client: MlflowClient, run_id: str, study: optuna.Study) -> None:
    states = [t.state.name for t in study.trials]
    for state in ("COMPLETE", "PRUNED", "FAIL"):
        client.log_metric(run_id, f"trials_{state.lower()}", states.count(state))
    best = best_trials(study)
    if best:
        top = best[0]
        for i, value in enumerate(top.values):
            client.log_metric(run_id, "best_value" if i == 0 else f"best_value_{i}", value)
        params = {param_key(key): value for key, value in top.params.items()}
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        for key, value in params.items():
            client.set_tag(run_id, f"best.{key}", str(value))
        client.set_tag(run_id, "optuna.best_trial", str(top.number))
        summary = {
            "number": top.number,
            "values": top.values,
            "params": top.params,
            "mlflow_run_id": top.user_attrs.get("mlflow_run_id"),
        }
        client.log_text(run_id, json.dumps(summary, indent=2), "optuna/best_trial.json")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        study.trials_dataframe().to_csv(folder / "trials.csv", index=False)
        plot_history(study, folder / "optimization_history.png", _objective_name(study))
        _importances(study, folder / "param_importances.png")
        client.log_artifacts(run_id, str(folder), "optuna")
