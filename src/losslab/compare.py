"""Runs of one study side by side, read back through ``mlflow.search_runs`` (pandas).

Given a parent run (a multirun or sweep) or an experiment (its newest multirun, or its runs
when it has none), it builds a table of what varied between the runs and what they scored on
the minority class (recall, precision, F1, ROC-AUC, PR-AUC and the confusion matrix at the
chosen threshold), overlays their ROC, PR and learning curves, and writes Markdown, CSV, PNGs
and one self-contained HTML page; ``losslab compare`` also logs them to the parent run. Runs
that differ only in seed are repeats: :mod:`losslab.compare_groups` gives each group its
intervals and compares the groups pairwise; :mod:`losslab.compare_report` writes it all.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

from losslab import compare_groups, compare_report
from losslab.compare_report import Comparison
from losslab.tracking import tag_keys

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.environment_variables import MLFLOW_TRACKING_URI  # noqa: E402

PARENT_TAG = "mlflow.parentRunId"
# the scores shown, in this order, when any run has them
METRICS = (
    "objective",
    "test_recall",
    "test_majority_recall",
    "test_recall_at_fpr",
    "test_precision",
    "test_pr_auc",
    "test_precision_at_train_prevalence",
    "test_pr_auc_at_train_prevalence",
    "test_roc_auc",
    "threshold",
    "test_at_0.5_recall",
    "test_at_0.5_majority_recall",
    "test_macro_f1",
    "test_micro_f1",
    "test_min_recall",
    "epochs_run",
    "best_epoch",
)
COUNTS = ("epochs_run", "best_epoch")  # metrics shown as integers
IGNORED_PARAMS = ("paths.", "tracking.", "tags.")


class CompareError(ValueError):
    """Nothing to compare: the experiment or run named does not exist or has no runs."""


@contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """``mlflow.search_runs`` reads MLflow's global URI: set it for the call only.

    ``mlflow.set_tracking_uri`` also sets ``MLFLOW_TRACKING_URI`` in ``os.environ`` (for
    subprocesses), so both are put back as they were, the variable unset if it was unset.
    """
    variable = os.environ.get(MLFLOW_TRACKING_URI.name)
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        if variable is None:
            MLFLOW_TRACKING_URI.unset()
        else:
            os.environ[MLFLOW_TRACKING_URI.name] = variable


def _parent(client: MlflowClient, run_id: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise CompareError(f"parent_run={run_id}: no such run in {client.tracking_uri}") from None


def find_runs(
    client: MlflowClient,
    experiment: str | None = None,
    parent_run_id: str | None = None,
) -> tuple[str | None, pd.DataFrame]:
    """The parent run and its children (one row each, oldest first, as ``mlflow.search_runs``
    gives them); or an experiment's runs."""
    if parent_run_id:
        exp_ids = [_parent(client, parent_run_id).info.experiment_id]
    else:
        found = client.get_experiment_by_name(experiment or "")
        if found is None:
            names = [e.name for e in client.search_experiments()]
            raise CompareError(f"experiment={experiment!r} does not exist; there are {names}")
        exp_ids = [found.experiment_id]
        parents = client.search_runs(
            exp_ids,
            filter_string=f"tags.`{tag_keys.RUN_TYPE}` = 'sweep'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        parent_run_id = parents[0].info.run_id if parents else None
    query = f"tags.`{PARENT_TAG}` = '{parent_run_id}'" if parent_run_id else ""
    with _tracking_uri(client.tracking_uri):
        runs = mlflow.search_runs(
            exp_ids, filter_string=query, order_by=["attributes.start_time ASC"], max_results=1000
        )
    type_column = f"tags.{tag_keys.RUN_TYPE}"
    if type_column in runs:
        runs = runs[runs[type_column] != "sweep"]
    if runs.empty:
        where = f"parent run {parent_run_id}" if parent_run_id else f"experiment {experiment!r}"
        raise CompareError(f"{where} has no runs to compare")
    return parent_run_id, runs.reset_index(drop=True)


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    """A column of ``runs`` that may be missing (no run has that tag, param or metric)."""
    return runs[name] if name in runs else pd.Series([None] * len(runs), index=runs.index)


def _varying(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if frame[c].fillna("-").nunique() > 1]


def labels(runs: pd.DataFrame) -> list[str]:
    """Each run named by the overrides that tell it from the others (or its run name)."""
    from losslab.tracking.names import readable_value

    words = _column(runs, "tags.losslab.overrides").fillna("").str.split()
    overrides = pd.DataFrame([dict(w.split("=", 1) for w in ws if "=" in w) for ws in words])
    keys = sorted(_varying(overrides))
    names = [
        " ".join(f"{k}={readable_value(str(row.get(k, '-')))}" for k in keys)
        for _, row in overrides.iterrows()
    ]
    trials = _column(runs, f"tags.{tag_keys.TRIAL_NUMBER}")
    names = [n if pd.isna(t) else f"#{t} {n}".strip() for n, t in zip(names, trials, strict=True)]
    if len(set(names)) < len(runs) or not all(names):
        names = list(_column(runs, "tags.mlflow.runName").fillna(runs["run_id"].str[:8]))
    return names


def _artifact_json(client: MlflowClient, run_id: str, path: str, folder: Path) -> Any:
    try:
        local = client.download_artifacts(run_id, path, str(folder))
    except Exception:  # an older or failed run without it
        return None
    return json.loads(Path(local).read_text())


def state(runs: pd.DataFrame) -> pd.Series:
    """Each run's outcome: PRUNED for a trial the pruner stopped (MLflow has no such status)."""
    outcome = _column(runs, "tags.losslab.outcome").str.upper()
    return outcome.where(outcome.notna(), runs["status"])


def build_table(client: MlflowClient, runs: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """One row per run: label, id, trial, state, the params that varied, scores, confusion."""
    params = runs[[c for c in runs if c.startswith("params.")]]
    params = params[[c for c in params if not c[len("params.") :].startswith(IGNORED_PARAMS)]]
    table = pd.DataFrame({"run": labels(runs), "run_id": runs["run_id"]})
    if f"tags.{tag_keys.TRIAL_NUMBER}" in runs:
        table["trial"] = pd.to_numeric(runs[f"tags.{tag_keys.TRIAL_NUMBER}"]).astype("Int64")
    table["status"] = state(runs)
    for column in _varying(params):
        table[column[len("params.") :]] = params[column].map(_rounded)
    for metric in METRICS:
        if f"metrics.{metric}" in runs and runs[f"metrics.{metric}"].notna().any():
            values = runs[f"metrics.{metric}"]
            table[metric] = values.round().astype("Int64") if metric in COUNTS else values
            for side in ("low", "high"):
                if f"metrics.{metric}_ci_{side}" in runs:
                    table[f"{metric}_ci_{side}"] = runs[f"metrics.{metric}_ci_{side}"]
    confusions = [
        _artifact_json(client, run_id, "evaluation/confusion_matrix.json", folder / run_id)
        for run_id in runs["run_id"]
    ]
    table["confusion"] = [json.dumps(c["at_threshold"]) if c else None for c in confusions]
    table.attrs["class_names"] = next((c["labels"] for c in confusions if c), None)
    table["confusion_at_0.5"] = [
        json.dumps(c["at_0.5"]) if c and c.get("at_0.5") else None for c in confusions
    ]
    return table


def _rounded(value: str | None) -> str | None:
    """A param as people read it: floats to 3 significant digits (Optuna samples 17)."""
    from losslab.tracking.names import readable_value

    return None if value is None or pd.isna(value) else readable_value(value)


@dataclass(frozen=True)
class Palette:
    """One colour per run, the same in every plot, and the name its legend gives it; with
    repeats a colour and a name stand for a group (so 40 runs make 8 legend lines)."""

    colour: dict[str, str]  # run label -> colour
    legend: dict[str, str]  # run label -> legend name

    @classmethod
    def of(cls, table: pd.DataFrame, groups: compare_groups.Groups) -> Palette:
        if not groups.repeated:
            colour = {name: f"C{i % 10}" for i, name in enumerate(table["run"])}
            return cls(colour, {name: name for name in table["run"]})
        by_group = groups.colours()
        pairs = list(zip(table["run"], groups.label, strict=True))
        return cls({n: by_group[g] for n, g in pairs}, dict(pairs))


def _curves_plot(curves: dict[str, Any], palette: Palette, kind: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 5))
    named: set[str] = set()
    for label, points in curves.items():
        if kind == "roc":
            x, y = points["roc"]["fpr"], points["roc"]["tpr"]
        else:
            x, y = points["pr"]["recall"], points["pr"]["precision"]
        ax.plot(x, y, color=palette.colour[label], label=_once(palette.legend[label], named))
    if kind == "roc":
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    else:
        ax.set(xlabel="recall", ylabel="precision", title="precision-recall (test)")
        ax.set(xlim=(0, 1), ylim=(0, 1.02))
    return _save(fig, ax, path)


def _once(name: str, named: set[str]) -> str:
    """A legend line per name: the repeats after the first go unnamed."""
    if name in named:
        return "_nolegend_"
    named.add(name)
    return name


def _save(fig, ax, path: Path) -> Path:
    """Legend beside the axes (with 30 runs it would cover the curves), nothing clipped."""
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _learning_plot(client: MlflowClient, table: pd.DataFrame, palette: Palette, path: Path):
    fig, ax = plt.subplots(figsize=(7, 5))
    named: set[str] = set()
    for run_id, label in zip(table["run_id"], table["run"], strict=True):
        for key, style in (("loss", "--"), ("val_loss", "-")):
            history = client.get_metric_history(run_id, key)
            ax.plot(
                [m.step for m in history],
                [m.value for m in history],
                style,
                color=palette.colour[label],
                label=_once(f"{palette.legend[label]} ({key})", named),
            )
    ax.set_yscale("log")  # one run's loss of 20 would flatten the others' 0.1 on a linear axis
    ax.set(
        xlabel="epoch (MLflow step)",
        ylabel="loss (log)",
        title="learning curves: train (--) and validation (-)",
    )
    return _save(fig, ax, path)


def compare(
    uri: str,
    out: str | Path,
    experiment: str | None = None,
    parent_run_id: str | None = None,
    log_to_parent: bool = True,
) -> Comparison:
    """Write the comparison to ``out`` (and to the parent run's ``comparison/`` artifacts)."""
    client = MlflowClient(uri)
    parent_run_id, runs = find_runs(client, experiment, parent_run_id)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        table = build_table(client, runs, Path(tmp))
        curves = {
            name: c
            for name, run_id in zip(table["run"], table["run_id"], strict=True)
            if (c := _artifact_json(client, run_id, "evaluation/curves.json", Path(tmp) / run_id))
        }
    groups = compare_groups.group(runs, table)
    images = _plots(client, table, groups, curves, out)
    parent = client.get_run(parent_run_id) if parent_run_id else None
    chosen = parent.data.tags.get("optuna.best_trial") if parent else None
    said = compare_groups.findings(groups, table, _max_fpr(runs))
    chosen_trial = int(chosen) if chosen is not None else None
    comparison = Comparison(table, parent_run_id, [], groups, said, chosen_trial)
    title = (
        f"losslab comparison: {(parent and parent.info.run_name) or experiment or parent_run_id}"
    )
    comparison.files = compare_report.write(comparison, title, images, out)
    if log_to_parent and parent_run_id:
        for path in comparison.files:
            client.log_artifact(parent_run_id, str(path), "comparison")
    return comparison


def _plots(client, table, groups, curves, out: Path) -> list[Path]:
    """The forest plot (with repeats), PR and ROC curves, learning curves."""
    palette = Palette.of(table, groups)
    images = [_learning_plot(client, table, palette, out / "learning_curves.png")]
    if curves:
        images = [
            _curves_plot(curves, palette, "pr", out / "pr_curves.png"),
            _curves_plot(curves, palette, "roc", out / "roc_curves.png"),
            *images,
        ]
    if groups.repeated:
        images.insert(0, compare_groups.forest_plot(groups, table, out / "forest.png"))
    return images


def _max_fpr(runs: pd.DataFrame) -> float | None:
    column = "params.evaluation.max_fpr"
    values = runs[column].dropna().unique() if column in runs else []
    return float(values[0]) if len(values) == 1 else None
