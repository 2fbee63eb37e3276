"""Repeats side by side: runs that differ only in seed grouped, each group's figures with
their interval, each pair of groups compared on the seeds they share, the findings in words.

A table of single draws ranks seed noise; here a difference is named only when it is told
from that noise (:mod:`losslab.uncertainty`), and "not distinguishable" is said otherwise.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from losslab import uncertainty  # noqa: E402
from losslab.repeats import group_of  # noqa: E402
from losslab.tracking import tag_keys  # noqa: E402

# the figures each group is summarised by (those its runs have), the headline first
SUMMARISED = (
    "test_recall_at_fpr",
    "test_pr_auc",
    "test_precision",
    "test_recall",
    "test_majority_recall",
    "test_macro_f1",
    "test_min_recall",
)
PAIRED = ("test_recall_at_fpr", "test_pr_auc", "test_macro_f1", "test_min_recall")


@dataclass
class Groups:
    """The repeats of each configuration: ``label`` per run, and the figures per group."""

    label: pd.Series  # one per run, the configuration apart from its seed
    seed: pd.Series  # one per run
    summary: pd.DataFrame  # one row per group: runs, then each figure's mean, low, high
    differences: list[uncertainty.Difference]
    metric: str | None  # the figure the differences compare

    @property
    def repeated(self) -> bool:
        return bool((self.summary["runs"] > 1).any())

    def colours(self) -> dict[str, str]:
        """One colour per group, in run order, for every plot."""
        return {g: f"C{i % 10}" for i, g in enumerate(self.summary["group"])}


def group_labels(runs: pd.DataFrame) -> pd.Series:
    """Each run's configuration but its seed, told by the overrides that vary between groups."""
    column = f"tags.{tag_keys.OVERRIDES}"
    words = runs[column].fillna("").str.split() if column in runs else pd.Series([[]] * len(runs))
    full = words.map(group_of)
    varying = _varying_keys(words)
    short = words.map(lambda ws: " ".join(w for w in sorted(ws) if w.split("=")[0] in varying))
    return short.where(short.str.len() > 0, full) if short.nunique() == full.nunique() else full


def _varying_keys(words: pd.Series) -> set[str]:
    values: dict[str, set[str]] = {}
    for ws in words:
        for w in ws:
            key, _, value = w.partition("=")
            values.setdefault(key, set()).add(value)
    present = [set(w.split("=")[0] for w in ws) for ws in words]
    return {
        k
        for k, v in values.items()
        if k != "seed" and (len(v) > 1 or any(k not in p for p in present))
    }


def group(runs: pd.DataFrame, table: pd.DataFrame) -> Groups:
    """``table`` (one row per run, :func:`losslab.compare.build_table`) grouped by configuration."""
    label = group_labels(runs).reset_index(drop=True)
    seed = runs.get("params.seed", pd.Series(range(len(runs)))).reset_index(drop=True)
    finished = table["status"].eq("FINISHED").reset_index(drop=True)
    metrics = [m for m in SUMMARISED if m in table]
    rows = []
    for name in dict.fromkeys(label):  # in run order
        members = table[(label == name) & finished]
        row: dict[str, object] = {"group": name, "runs": len(members)}
        for metric in metrics:
            found = uncertainty.over_repeats(members[metric].astype(float).tolist())
            row.update(
                {metric: found.mean, f"{metric}_low": found.low, f"{metric}_high": found.high}
            )
        row["confusion"] = _mean_confusion(members.get("confusion", pd.Series(dtype=object)))
        rows.append(row)
    summary = pd.DataFrame(rows)
    metric = next((m for m in PAIRED if m in table), None)
    differences = _pairs(table, label, seed, finished, metric) if metric else []
    return Groups(label, seed, summary, differences, metric)


def _mean_confusion(cells: pd.Series) -> str | None:
    """The group's test confusion matrix at the threshold, each count averaged over repeats."""
    import json

    import numpy as np

    matrices = [np.array(json.loads(c)) for c in cells.dropna()]
    if not matrices or len({m.shape for m in matrices}) > 1:
        return None
    return json.dumps(np.round(np.mean(matrices, axis=0), 1).tolist())


def _pairs(table, label, seed, finished, metric: str) -> list[uncertainty.Difference]:
    """Every pair of groups on ``metric``, paired by seed, adjusted for the number of pairs.
    A seed a group ran twice (the same command run again) pairs by its first run."""
    by_seed = {}
    for name in dict.fromkeys(label):
        values = table[(label == name) & finished].assign(seed=seed).set_index("seed")[metric]
        by_seed[name] = values[~values.index.duplicated()]
    found = []
    for first, second in itertools.combinations(by_seed, 2):
        shared = by_seed[first].index.intersection(by_seed[second].index)
        if len(shared) >= 2:
            a, b = by_seed[first].loc[shared], by_seed[second].loc[shared]
            found.append(uncertainty.paired(first, a.tolist(), second, b.tolist()))
    return [_bounded(d) for d in uncertainty.adjust(found)]


def findings(groups: Groups, table: pd.DataFrame, max_fpr: float | None) -> list[str]:
    """One sentence per finding: each group against the first (the reference, e.g. no
    remedy), which groups the best one cannot be told from, and what the threshold chosen on
    validation does for the reference against 0.5."""
    if groups.metric is None or not groups.differences:
        return []
    threshold = threshold_finding(groups, table)
    what = _what(groups.metric, max_fpr)
    reference = groups.summary["group"].iloc[0]
    pairs = len(groups.differences)
    said = [
        _sentence(d, what, reference, pairs) for d in groups.differences if reference in _names(d)
    ]
    best = groups.summary.sort_values(groups.metric, ascending=False)["group"].iloc[0]
    close = [
        _other(d, best)
        for d in groups.differences
        if best in _names(d) and not d.distinguishable() and reference not in _names(d)
    ]
    if close:
        said.append(f"the best by mean, {best}, is not distinguishable from {', '.join(close)}")
    return said + ([threshold] if threshold else [])


def threshold_finding(groups: Groups, table: pd.DataFrame) -> str | None:
    """The reference's runs at the validation threshold against the same runs at 0.5."""
    needed = ("test_recall", "test_at_0.5_recall", "test_majority_recall")
    if not all(c in table for c in needed):
        return None
    reference = groups.summary["group"].iloc[0]
    runs = table[(groups.label == reference) & table["status"].eq("FINISHED")]
    chosen = "the threshold chosen on validation"
    found = uncertainty.paired(chosen, runs["test_recall"], "0.5", runs["test_at_0.5_recall"])
    d = _bounded(uncertainty.adjust([found])[0])
    if math.isnan(d.mean) or d.n < 2:
        return None
    majority = runs["test_majority_recall"].mean()
    at_half = runs.get("test_at_0.5_majority_recall", pd.Series(dtype=float)).mean()
    return (
        f"{_sentence(d, 'more of the minority', '0.5', 1)} on {reference}'s runs, "
        f"at majority recall {majority:.3f} against {at_half:.3f}"
    )


def _bounded(d: uncertainty.Difference) -> uncertainty.Difference:
    """A difference of two figures in [0, 1] lies in [-1, 1]; a t interval on two repeats
    would say [-3.3, +4.1]."""
    return dataclasses.replace(d, low=max(d.low, -1.0), high=min(d.high, 1.0))


def _names(d: uncertainty.Difference) -> tuple[str, str]:
    return d.first, d.second


def _other(d: uncertainty.Difference, name: str) -> str:
    return d.second if d.first == name else d.first


def _what(metric: str, max_fpr: float | None) -> str:
    if metric == "test_recall_at_fpr":
        at = f"{max_fpr:.0%}" if max_fpr is not None else "the fixed"
        return f"more of the minority at {at} FPR"
    return f"higher {metric.removeprefix('test_').replace('_', ' ')}"


def _sentence(d: uncertainty.Difference, what: str, reference: str, pairs: int) -> str:
    """``X finds 0.23 [+0.15, +0.31] more of the minority at 1% FPR than none (...)``, or
    ``X and none are not distinguishable (...)``: the difference read as X minus reference."""
    other = _other(d, reference)
    sign = 1 if d.first == other else -1
    mean, low, high = sign * d.mean, *sorted((sign * d.low, sign * d.high))
    interval = f"[{low:+.2f}, {high:+.2f}]"
    p = "" if math.isnan(d.p_value) else f"p {d.p_value:.2g}"
    if pairs > 1 and not math.isnan(d.adjusted_p):
        p += f", {d.adjusted_p:.2g} adjusted for {pairs} comparisons"
    told = ", ".join(x for x in (p, f"{d.n} paired repeats") if x)
    if not d.distinguishable():
        return f"{other} and {reference} are not distinguishable ({mean:+.2f} {interval}; {told})"
    verb = "finds" if what.startswith("more") else "scores"
    if mean < 0:
        what = what.replace("more", "less").replace("higher", "lower")
    return f"{other} {verb} {abs(mean):.2f} {interval} {what} than {reference} ({told})"


def forest_plot(groups: Groups, table: pd.DataFrame, path: Path) -> Path:
    """Each figure's mean and 95% interval per group, each repeat a tick beside it."""
    metrics = [m for m in SUMMARISED[:3] if m in groups.summary]
    height = 0.45 * len(groups.summary) + 1.6
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(3.6 * len(metrics), height),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    colours = groups.colours()
    for ax, metric in zip(axes[0], metrics, strict=True):
        for y, row in groups.summary.iterrows():
            colour = colours[row["group"]]
            mean, low, high = row[metric], row[f"{metric}_low"], row[f"{metric}_high"]
            spread = None if pd.isna(low) else [[mean - low], [high - mean]]
            ax.errorbar(mean, y, xerr=spread, fmt="o", color=colour, capsize=3)
            repeats = table.loc[groups.label == row["group"], metric].dropna()
            ax.plot(repeats, [y + 0.15] * len(repeats), "|", color=colour, alpha=0.7, ms=8)
        ax.set(title=metric.removeprefix("test_").replace("_", " "), xlim=(-0.02, 1.02))
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(groups.summary)), groups.summary["group"], fontsize="small")
    fig.suptitle("test figures: mean and 95% interval over repeats (ticks: each repeat)")
    axes[0][0].set_ylim(len(groups.summary) - 0.5, -0.5)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
