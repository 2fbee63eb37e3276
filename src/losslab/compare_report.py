"""A comparison written for people: Markdown for the terminal, CSV for code, one HTML page.

The page reads at a glance: the findings in words, each group's figures with their
interval, the paired differences, then one row per run (the best starred), its confusion
matrix as a small labelled table, and the plots. Self-contained (images inlined), so it can
be mailed or opened from the parent run's artifacts.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from losslab.compare_groups import Groups


@dataclass
class Comparison:
    """What one comparison found: the runs, their groups, the findings, the files written."""

    table: pd.DataFrame
    parent_run_id: str | None
    files: list[Path]
    groups: Groups
    findings: list[str]
    chosen_trial: int | None = None


STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1400px}"
    "table{border-collapse:collapse;font-size:13px;margin-bottom:1em}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
    "th{vertical-align:bottom}tr.best td{background:#fff4c2;font-weight:bold}"
    "table.confusion td,table.confusion th{border:1px solid #ddd;padding:1px 4px;font-size:11px}"
    "figure{display:inline-block;margin:1em}li{margin:0.3em 0}"
    "table.runs td{white-space:nowrap}table.runs td:first-child{white-space:normal}"
    ".ci{display:block;color:#777;font-size:10px}"
)


def write(comparison: Comparison, title: str, images: list[Path], out: Path) -> list[Path]:
    """comparison.md, .csv, .html (and groups.csv, differences.csv with repeats) in ``out``."""
    files = [out / "comparison.md", out / "comparison.csv", out / "comparison.html"]
    groups = comparison.groups
    text = markdown(comparison.table, comparison.chosen_trial, star=not groups.repeated)
    if groups.repeated:
        text = "\n\n".join([summary_markdown(groups), *_bullets(comparison.findings), text])
        groups.summary.to_csv(out / "groups.csv", index=False)
        differences(groups).to_csv(out / "differences.csv", index=False)
        files += [out / "groups.csv", out / "differences.csv"]
    files[0].write_text(text + "\n")
    comparison.table.to_csv(files[1], index=False)
    files[2].write_text(page(comparison, title, images))
    return [*files, *images]


def terminal(comparison: Comparison) -> str:
    """What the command prints: with repeats the groups and the findings (each run is in
    comparison.md), else the runs."""
    if not comparison.groups.repeated:
        return markdown(comparison.table, comparison.chosen_trial)
    return "\n\n".join([summary_markdown(comparison.groups), *_bullets(comparison.findings)])


def _bullets(findings: list[str]) -> list[str]:
    return ["\n".join(f"- {line}" for line in findings)] if findings else []


def summary_markdown(groups: Groups) -> str:
    """Each group: its runs and each figure's mean with its 95% interval over repeats."""
    return frame_markdown(summary_frame(groups))


def summary_frame(groups: Groups) -> pd.DataFrame:
    """Each group's figures as ``mean [low, high]``, the best group by the headline starred."""
    shown = groups.summary[["group", "runs"]].copy()
    if groups.metric in groups.summary:
        best = groups.summary[groups.metric].astype(float).idxmax()
        shown.loc[best, "group"] = f"★ {shown.loc[best, 'group']}"
    metrics = [c for c in groups.summary if f"{c}_low" in groups.summary]
    for metric in metrics:
        mean, low, high = (groups.summary[f"{metric}{s}"] for s in ("", "_low", "_high"))
        shown[metric] = [
            "" if pd.isna(m) else f"{m:.3f}" if pd.isna(lo) else f"{m:.3f} [{lo:.2f}, {hi:.2f}]"
            for m, lo, hi in zip(mean, low, high, strict=True)
        ]
    if "confusion" in groups.summary:
        shown["confusion (mean)"] = groups.summary["confusion"]
    return shown


def differences(groups: Groups) -> pd.DataFrame:
    """Each pair of groups on the paired figure: the difference, its interval and tests."""
    return pd.DataFrame(
        [
            {
                "first": d.first,
                "second": d.second,
                "metric": groups.metric,
                "difference": d.mean,
                "low": d.low,
                "high": d.high,
                "paired_repeats": d.n,
                "p": d.p_value,
                "p_adjusted": d.adjusted_p,
                "verdict": "distinguishable" if d.distinguishable() else "not distinguishable",
            }
            for d in groups.differences
        ]
    )


def page(comparison: Comparison, title: str, images: list[Path]) -> str:
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if comparison.findings:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in comparison.findings)
        parts.append(f"<h2>Findings</h2><ul class='findings'>{items}</ul>")
    if comparison.groups.repeated:
        parts.append("<h2>Each configuration over its repeats (mean [95% interval])</h2>")
        names = comparison.table.attrs.get("class_names")
        parts.append(_table(summary_frame(comparison.groups), "groups", names))
        if comparison.groups.differences:
            parts.append("<h2>Paired differences (first minus second)</h2>")
            parts.append(_table(_readable(differences(comparison.groups)), "differences"))
    parts.append("<h2>Runs</h2>" if comparison.groups.repeated else "")
    parts.append(_runs_table(comparison))
    parts.append("".join(_figure(p) for p in images))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )


def _readable(frame: pd.DataFrame) -> pd.DataFrame:
    shown = frame.copy()
    for column in ("difference", "low", "high"):
        shown[column] = shown[column].map(lambda v: f"{v:+.3f}")
    for column in ("p", "p_adjusted"):
        shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
    return shown


def _runs_table(comparison: Comparison) -> str:
    """One row per run, the best marked, confusion matrices as small labelled tables."""
    table = comparison.table
    repeated = comparison.groups.repeated  # then the best is a group, starred above
    best = None if repeated else best_row(table, comparison.chosen_trial)
    shown = display(table, comparison.chosen_trial, html_interval, star=not repeated)
    shown = shown.drop(columns="run_id")
    names = table.attrs.get("class_names")
    confusions = [c for c in shown.columns if c.startswith("confusion")]
    head = "".join(f"<th>{_header(c)}</th>" for c in shown.columns)
    rows = []
    for i, row in shown.iterrows():
        cells = "".join(
            f"<td>{_confusion(row[c], names) if c in confusions else _marked(row[c])}</td>"
            for c in shown.columns
        )
        rows.append(f"<tr class='best'>{cells}</tr>" if i == best else f"<tr>{cells}</tr>")
    return f"<table class='runs'><tr>{head}</tr>{''.join(rows)}</table>"


def _table(frame: pd.DataFrame, css: str, names: list[str] | None = None) -> str:
    head = "".join(f"<th>{_header(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{_confusion(v, names) if c.startswith('confusion') else _marked(v)}</td>"
            for c, v in zip(frame.columns, row, strict=True)
        )
        + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table class='{css}'><tr>{head}</tr>{body}</table>"


def _header(column: str) -> str:
    """Long metric names break after their underscores, so 20 columns fit a laptop."""
    escaped = html.escape(str(column)).replace("_", "_<wbr>")
    return re.sub(r"\.(?=[a-z])", ".<wbr>", escaped)  # loss.kwargs.gamma, not at_0.5


def _cell(value) -> str:
    return _fmt(value)


def html_interval(value: float, low: float, high: float) -> str:
    """A figure and, below it in grey, its interval (kept narrow: a run has ten of them)."""
    return f"{value:.3f}\x00{low:.2f}–{high:.2f}"


def _marked(value) -> str:
    """A cell escaped; an interval set by :func:`html_interval` on its own small line."""
    text = html.escape(_cell(value))
    if "\x00" not in text:
        return text
    figure, interval = text.split("\x00")
    return f"{figure}<span class='ci' title='95% interval over the test set'>{interval}</span>"


def _confusion(cell, names: list[str] | None) -> str:
    """``[[tn, fp], [fn, tp]]`` as a table: rows the true class, columns the predicted."""
    if cell is None or (not isinstance(cell, str) and pd.isna(cell)):
        return ""
    matrix = json.loads(cell)
    names = names if names and len(names) == len(matrix) else [str(k) for k in range(len(matrix))]
    head = "<tr><th>true \\ pred</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = "".join(
        f"<tr><th>{html.escape(n)}</th>" + "".join(f"<td>{v}</td>" for v in counts) + "</tr>"
        for n, counts in zip(names, matrix, strict=True)
    )
    return f"<table class='confusion'>{head}</tr>{rows}</table>"


def _figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (
        f'<figure><img alt="{path.stem}" src="data:image/png;base64,{data}">'
        f"<figcaption>{path.stem}</figcaption></figure>"
    )


# -- tables as text --------------------------------------------------------------------
def _interval_text(value: float, low: float, high: float) -> str:
    return f"{value:.3f} [{low:.2f}, {high:.2f}]"


def display(
    table: pd.DataFrame, chosen_trial: int | None = None, interval=_interval_text, star=True
) -> pd.DataFrame:
    """The table as people read it: each interval beside its figure (``0.433 [0.32, 0.68]``),
    the best run marked with a star (:func:`best_row`)."""
    shown = table.copy()
    for column in [c for c in table.columns if c.endswith("_ci_low")]:
        metric = column.removesuffix("_ci_low")
        low, high = table[column], table[f"{metric}_ci_high"]
        shown[metric] = [
            _fmt(v) if pd.isna(lo) else interval(v, lo, hi)
            for v, lo, hi in zip(table[metric], low, high, strict=True)
        ]
        shown = shown.drop(columns=[column, f"{metric}_ci_high"])
    best = best_row(table, chosen_trial) if star else None
    if best is not None:
        shown.loc[best, "run"] = f"★ {shown.loc[best, 'run']}"
    return shown


def best_row(table: pd.DataFrame, chosen_trial: int | None = None) -> int | None:
    """The trial a sweep chose; else the finished run with the highest recall at the fixed
    FPR (the objective's direction is not in the table, the headline figure's is)."""
    if chosen_trial is not None and "trial" in table:
        found = table.index[table["trial"].eq(chosen_trial).fillna(False)]
        if len(found):
            return int(found[0])
    finished = table[table["status"].eq("FINISHED")]
    if "test_recall_at_fpr" in finished and finished["test_recall_at_fpr"].notna().any():
        return int(finished["test_recall_at_fpr"].astype(float).idxmax())
    return None


def markdown(table: pd.DataFrame, chosen_trial: int | None = None, star: bool = True) -> str:
    """A GitHub-style table; scores to 3 decimals."""
    return frame_markdown(display(table, chosen_trial, star=star).drop(columns="run_id"))


def frame_markdown(frame: pd.DataFrame) -> str:
    columns = list(frame.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        cells = (_fmt(row[c]).replace("|", "\\|") for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    """A cell as people read it: empty for a missing value, scores to 3 decimals."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)
