"""What a sweep's MLflow parent run records about its Optuna study.

At the start, from the sweep's config: study name, storage (secrets masked), sampler, pruner,
directions. At the end, from the study in its storage (so it covers every worker's trials):
the search space the trials drew from, the best trial's value (metric ``best_value``) and
params (params under the children's keys, so the parent's row lines up with its children's
columns, tags ``best.<param>`` and ``optuna/best_trial.json``) or, with several objectives,
the Pareto front (table and plot), every trial as ``optuna/trials.csv``, the optimization
history with pruned and failed trials, and Optuna's parameter-importance plot. Each sweep
command has a parent of its own (a resumed study's next command gets a new one), so the params
it logs once at its end are never changed.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from mlflow import MlflowClient
from mlflow.entities import Param

from losslab.search import optuna_plots, pareto, ties
from losslab.search.history import plot_history
from losslab.search.settings import best_trials, directions
from losslab.search.study import IDENTITY_ATTR
from losslab.tracking import tag_keys
from losslab.tracking.redact import redact_text


def study_tags(sweeper: Mapping[str, Any], storage_url: str, study_name: str) -> dict[str, str]:
    """What the parent run says about its study from the start: name, storage (masked),
    sampler, pruner, directions and the trials the study is to have."""
    wanted = directions(sweeper.get("direction", "maximize"))

    def class_name(node: Any, default: str) -> str:
        target = node.get("_target_", default) if node is not None else default
        return str(target).rsplit(".", 1)[-1]

    return {
        tag_keys.STUDY_NAME: study_name,
        "optuna.storage": redact_text(storage_url),
        "optuna.sampler": class_name(sweeper.get("sampler"), "TPESampler"),
        "optuna.pruner": class_name(sweeper.get("pruner"), "NopPruner"),
        "optuna.directions": ",".join(str(d) for d in wanted),
        "optuna.n_trials": str(sweeper.get("n_trials", "")),
    }


def record_study(client: MlflowClient, run_id: str, storage_url: str, study_name: str) -> None:
    """The study's report, read from its storage: what every worker's trials amount to."""
    from losslab.search.storage import open_storage

    study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url))
    log_study_end(client, run_id, study)


def _search_space(study: optuna.Study) -> dict[str, str]:
    """Each param's distribution as its trials drew it (those of a custom search space too)."""
    space: dict[str, str] = {}
    for trial in study.get_trials(deepcopy=False):
        space.update({key: repr(dist) for key, dist in trial.distributions.items()})
    return dict(sorted(space.items()))


def _objective_names(study: optuna.Study) -> list[str]:
    """The metric each objective value is, as the study's identity records them."""
    identity = study.user_attrs.get(IDENTITY_ATTR) or {}
    names = identity.get("objective", {}).get("name", "objective")
    names = [names] if isinstance(names, str) else list(names)
    n = len(study.directions)
    return names if len(names) == n else [f"objective {i}" for i in range(n)]


def _importances(study: optuna.Study, path: Path) -> Path | None:
    """Optuna's parameter-importance plot; None when the study has too few trials for it."""
    from optuna.visualization.matplotlib import plot_param_importances

    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    return optuna_plots.save(
        lambda: plot_param_importances(study, target=target), path, "param_importances"
    )


def param_key(override_key: str) -> str:
    """The MLflow key of a swept override: ``+tags.w`` and ``~x`` are not valid MLflow keys."""
    return override_key.lstrip("+~")


def log_study_end(
    client: MlflowClient, run_id: str, study: optuna.Study, params: bool = True
) -> None:
    """The report; ``params=False`` leaves the best params as tags alone, for a parent that
    reports again as its study goes on (MLflow params never change)."""
    states = [t.state.name for t in study.trials]
    for state in ("COMPLETE", "PRUNED", "FAIL"):
        client.log_metric(run_id, f"trials_{state.lower()}", states.count(state))
    client.log_text(run_id, json.dumps(_search_space(study), indent=2), "optuna/search_space.json")
    best = best_trials(study)
    if len(study.directions) > 1:
        client.log_metric(run_id, "pareto_front_size", len(best))
    elif best:
        choice = ties.choose(study)
        top = choice.trial
        client.log_metric(run_id, "best_ties", len(choice.tied))  # trials sharing best_value
        client.set_tag(run_id, "optuna.tie_rule", choice.rule)
        client.set_tag(run_id, "optuna.tied_trials", ",".join(str(t.number) for t in choice.tied))
        for i, value in enumerate(top.values):
            client.log_metric(run_id, "best_value" if i == 0 else f"best_value_{i}", value)
        best_params = {param_key(key): value for key, value in top.params.items()}
        if params:
            client.log_batch(run_id, params=[Param(k, str(v)) for k, v in best_params.items()])
        for key, value in best_params.items():
            client.set_tag(run_id, f"best.{key}", str(value))
        client.set_tag(run_id, "optuna.best_trial", str(top.number))
        summary = {
            "number": top.number,
            "values": top.values,
            "params": top.params,
            "mlflow_run_id": top.user_attrs.get("mlflow_run_id"),
            "tie_rule": choice.rule,
            "tied_trials": {t.number: ties.tie_value(t) for t in choice.tied},
        }
        client.log_text(run_id, json.dumps(summary, indent=2), "optuna/best_trial.json")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        study.trials_dataframe().to_csv(folder / "trials.csv", index=False)
        names = _objective_names(study)
        if len(study.directions) > 1:
            pareto.write_table(study, folder / "pareto_front.csv", names)
            pareto.plot(study, folder / "pareto_front.png", names)
        else:
            plot_history(study, folder / "optimization_history.png", names[0])
        _importances(study, folder / "param_importances.png")
        client.log_artifacts(run_id, str(folder), "optuna")
