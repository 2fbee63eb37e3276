"""What a sweep's MLflow parent run records about its Optuna study.

At the start: study name, storage (secrets masked), sampler, pruner and search space. At the
end: the best trial's value (metric ``best_value``) and params (tags ``best.<param>`` and
``optuna/best_trial.json``), every trial as ``optuna/trials.csv``, and Optuna's
optimization-history and parameter-importance plots. Tags and artifacts, not params, hold
what changes when a resumed sweep records again.
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


def _plots(study: optuna.Study, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    made = []
    for name, plot in (
        ("optimization_history", optuna_plots.plot_optimization_history),
        ("param_importances", optuna_plots.plot_param_importances),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = plot(study, target=target) if target else plot(study)
            figure = getattr(axes, "figure", None) or axes.flat[0].figure
            path = folder / f"{name}.png"
            figure.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(figure)
            made.append(path)
        except (ValueError, RuntimeError, ZeroDivisionError) as err:  # too few trials
            log.info("optuna %s plot skipped: %s", name, err)
    return made


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
        for key, value in top.params.items():
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
        _plots(study, folder)
        client.log_artifacts(run_id, str(folder), "optuna")
