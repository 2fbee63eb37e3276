"""Runs of one study side by side, read back through MLflow's client.

Given a parent run (a multirun or sweep) or an experiment (its newest multirun, or its runs
when it has none), it builds a table of what varied between the runs and what they scored on
the minority class (recall, precision, F1, ROC-AUC, PR-AUC and the confusion matrix at the
chosen threshold), overlays their ROC, PR and learning curves, and writes Markdown, CSV, PNGs
and one self-contained HTML page; ``pipelines/compare.py`` also logs them to the parent run.
"""

from __future__ import annotations

import base64
import html
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Run  # noqa: E402

PARENT_TAG = "mlflow.parentRunId"
RUN_TYPE_TAG = "losslab.run_type"
# the scores shown, in this order, when any run has them
METRICS = (
    "objective",
    "test_recall",
    "test_majority_recall",
    "test_recall_at_fpr",
    "test_precision",
    "test_pr_auc",
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
TRIAL_TAG = "optuna.trial_number"
IGNORED_PARAMS = ("paths.", "tracking.", "tags.")


class CompareError(ValueError):
    """Nothing to compare: the experiment or run named does not exist or has no runs."""


@dataclass
class Comparison:
    table: pd.DataFrame
    parent_run_id: str | None
    files: list[Path]


def find_runs(
    client: MlflowClient, experiment: str | None = None, parent_run_id: str | None = None
) -> tuple[str | None, list[Run]]:
    """The parent run and its children, oldest first; or an experiment's runs."""
    if parent_run_id:
        parent = client.get_run(parent_run_id)
        exp_ids = [parent.info.experiment_id]
    else:
        found = client.get_experiment_by_name(experiment or "")
        if found is None:
            names = [e.name for e in client.search_experiments()]
            raise CompareError(f"experiment={experiment!r} does not exist; there are {names}")
        exp_ids = [found.experiment_id]
        parents = client.search_runs(
            exp_ids,
            filter_string=f"tags.`{RUN_TYPE_TAG}` = 'sweep'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        parent_run_id = parents[0].info.run_id if parents else None
    query = f"tags.`{PARENT_TAG}` = '{parent_run_id}'" if parent_run_id else ""
    runs = client.search_runs(
        exp_ids, filter_string=query, order_by=["attributes.start_time ASC"], max_results=1000
    )
    runs = [r for r in runs if r.data.tags.get(RUN_TYPE_TAG) != "sweep"]
    if not runs:
        where = f"parent run {parent_run_id}" if parent_run_id else f"experiment {experiment!r}"
        raise CompareError(f"{where} has no runs to compare")
    return parent_run_id, runs


def _overrides(run: Run) -> dict[str, str]:
    words = run.data.tags.get("losslab.overrides", "").split()
    return dict(w.split("=", 1) for w in words if "=" in w)


def _varying(values: list[dict[str, str]]) -> list[str]:
    keys = sorted({k for v in values for k in v})
    return [k for k in keys if len({v.get(k) for v in values}) > 1]


def labels(runs: list[Run]) -> list[str]:
    """Each run named by the overrides that tell it from the others (or its run name)."""
    overrides = [_overrides(r) for r in runs]
    keys = _varying(overrides)
    names = [" ".join(f"{k}={o.get(k, '-')}" for k in keys) for o in overrides]
    if len(set(names)) < len(runs) or not all(names):
        names = [r.info.run_name or r.info.run_id[:8] for r in runs]
    return names


def _artifact_json(client: MlflowClient, run_id: str, path: str, folder: Path) -> Any:
    try:
        local = client.download_artifacts(run_id, path, str(folder))
    except Exception:  # an older or failed run without it
        return None
    return json.loads(Path(local).read_text())


def build_table(client: MlflowClient, runs: list[Run], folder: Path) -> pd.DataFrame:
    """One row per run: label, id, status, the params that varied, scores, confusion."""
    params = [
        {k: v for k, v in r.data.params.items() if not k.startswith(IGNORED_PARAMS)} for r in runs
    ]
    varied = _varying(params)
    shown = [m for m in METRICS if any(m in r.data.metrics for r in runs)]
    trials = any(TRIAL_TAG in r.data.tags for r in runs)
    rows = []
    for label, run, p in zip(labels(runs), runs, params, strict=True):
        row: dict[str, Any] = {"run": label, "run_id": run.info.run_id, "status": state(run)}
        if trials:
            row["trial"] = run.data.tags.get(TRIAL_TAG)
        row.update({k: _rounded(p.get(k)) for k in varied})
        row.update({m: run.data.metrics.get(m) for m in shown})
        confusion = _artifact_json(
            client, run.info.run_id, "evaluation/confusion_matrix.json", folder / run.info.run_id
        )
        row["confusion"] = json.dumps(confusion["at_threshold"]) if confusion else None
        at_half = (confusion or {}).get("at_0.5")
        row["confusion_at_0.5"] = json.dumps(at_half) if at_half else None
        rows.append(row)
    return pd.DataFrame(rows)


def _rounded(value: str | None) -> str | None:
    """A param as people read it: floats to 3 significant digits (Optuna samples 17)."""
    from losslab.tracking.names import readable_value

    return None if value is None else readable_value(value)


def state(run: Run) -> str:
    """The run's status, PRUNED for a trial the pruner stopped (MLflow has no such status)."""
    if run.data.tags.get("losslab.pruned") == "true":
        return "PRUNED"
    return run.info.status


def markdown(table: pd.DataFrame) -> str:
    """A GitHub-style table; numbers to 4 decimals."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else f"{value:.4f}"
        return "" if value is None else str(value).replace("|", "\\|")

    columns = [c for c in table.columns if c != "run_id"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(cell(row[c]) for c in columns) + " |")
    return "\n".join(lines)


def _curves_plot(curves: dict[str, Any], kind: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 5))
    for label, points in curves.items():
        if kind == "roc":
            ax.plot(points["roc"]["fpr"], points["roc"]["tpr"], label=label)
        else:
            ax.plot(points["pr"]["recall"], points["pr"]["precision"], label=label)
    if kind == "roc":
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    else:
        ax.set(xlabel="recall", ylabel="precision", title="precision-recall (test)")
        ax.set(xlim=(0, 1), ylim=(0, 1.02))
    return _save(fig, ax, path)


def _save(fig, ax, path: Path) -> Path:
    """Legend beside the axes (with 30 runs it would cover the curves), nothing clipped."""
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _learning_plot(client: MlflowClient, runs: list[Run], names: list[str], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, (run, label) in enumerate(zip(runs, names, strict=True)):
        color = f"C{i % 10}"
        for key, style in (("loss", "--"), ("val_loss", "-")):
            history = client.get_metric_history(run.info.run_id, key)
            steps = [m.step for m in history]
            ax.plot(steps, [m.value for m in history], style, color=color, label=f"{label} ({key})")
    ax.set_yscale("log")  # one run's loss of 20 would flatten the others' 0.1 on a linear axis
    ax.set(
        xlabel="epoch (MLflow step)",
        ylabel="loss (log)",
        title="learning curves: train (--) and validation (-)",
    )
    return _save(fig, ax, path)


def _html(title: str, table: pd.DataFrame, images: list[Path]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in table.itertuples(index=False)
    )
    figures = "".join(
        f'<figure><img alt="{p.stem}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{p.stem}</figcaption></figure>'
        for p in images
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "figure{display:inline-block;margin:1em}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table><tr>{head}</tr>{body}</table>{figures}"
        "</body></html>"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.4f}"
    return "" if value is None else str(value)


def compare(
    uri: str,
    out: str | Path,
    experiment: str | None = None,
    parent_run_id: str | None = None,
    log_to_parent: bool = True,
) -> Comparison:
    """Write the comparison to ``out`` (and to the parent run's ``comparison/`` artifacts)."""
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    os.environ[MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name] = "false"  # one bar per artifact
    client = MlflowClient(uri)
    parent_run_id, runs = find_runs(client, experiment, parent_run_id)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        table = build_table(client, runs, Path(tmp))
        names = list(table["run"])
        curves = {
            name: c
            for name, run in zip(names, runs, strict=True)
            if (
                c := _artifact_json(
                    client, run.info.run_id, "evaluation/curves.json", Path(tmp) / run.info.run_id
                )
            )
        }
    images = [_learning_plot(client, runs, names, out / "learning_curves.png")]
    if curves:
        images = [
            _curves_plot(curves, "pr", out / "pr_curves.png"),
            _curves_plot(curves, "roc", out / "roc_curves.png"),
            *images,
        ]
    text = markdown(table)
    (out / "comparison.md").write_text(text + "\n")
    table.to_csv(out / "comparison.csv", index=False)
    title = f"losslab comparison: {experiment or parent_run_id}"
    (out / "comparison.html").write_text(_html(title, table, images))
    files = [out / "comparison.md", out / "comparison.csv", out / "comparison.html", *images]
    if log_to_parent and parent_run_id:
        for path in files:
            client.log_artifact(parent_run_id, str(path), "comparison")
    return Comparison(table, parent_run_id, files)
