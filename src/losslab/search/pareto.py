"""The Pareto front of a multi-objective study, as a table and a plot for its parent run.

Optuna's ``plot_pareto_front`` draws the front among all complete trials; the table beside it
holds what the plot cannot: each front trial's params and the MLflow run that recorded it.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd

from losslab.search import optuna_plots
from losslab.search.settings import best_trials


def front_table(study: optuna.Study, names: list[str]) -> pd.DataFrame:
    """One row per trial on the front: number, each objective by name, params, run id."""
    rows = [
        {
            "number": t.number,
            **dict(zip(names, t.values, strict=True)),
            **{f"params_{k}": v for k, v in t.params.items()},
            "mlflow_run_id": t.user_attrs.get("mlflow_run_id"),
        }
        for t in best_trials(study)
    ]
    return pd.DataFrame(rows, columns=None if rows else ["number", *names])


def write_table(study: optuna.Study, path: Path, names: list[str]) -> Path:
    front_table(study, names).sort_values("number").to_csv(path, index=False)
    return path


def plot(study: optuna.Study, path: Path, names: list[str]) -> Path | None:
    """Optuna's Pareto-front plot (two or three objectives); None when it cannot draw one."""
    from optuna.visualization.matplotlib import plot_pareto_front

    if not 2 <= len(study.directions) <= 3:
        return None
    return optuna_plots.save(
        lambda: plot_pareto_front(study, target_names=names), path, "pareto_front"
    )
