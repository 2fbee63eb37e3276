"""The figures every run logs: confusion matrix, ROC and PR curves, learning curves.

Drawn with scikit-learn's displays; what they lack for imbalanced data is added here: row
rates beside the counts (a 0.9 recall of 20 samples reads differently from one of 2000), a
log-scaled false-positive axis on ROC (the region that matters, FPR <= 1%, is a sliver on a
linear one), and the chosen operating point on both curves. Figures are saved with a tight
bounding box, so no title or label is ever cut off.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

from losslab.evaluate import Evaluation  # noqa: E402

DPI = 110  # about 550 px wide at 5 inches: legible at MLflow's artifact preview size


def confusion_matrix(ev: Evaluation, path: Path) -> Path:
    """Counts and each true class's rate (recall on the diagonal), with the threshold used."""
    cm = np.asarray(ev.confusion)
    names = ev.class_names if len(ev.class_names) == len(cm) else [str(i) for i in range(len(cm))]
    side = max(4.5, 1.6 + 0.9 * len(cm))
    fig, ax = plt.subplots(figsize=(side + 0.8, side))
    display = skm.ConfusionMatrixDisplay(cm, display_labels=names)
    display.plot(ax=ax, cmap="Blues", colorbar=False, values_format="d")
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    for (i, j), count in np.ndenumerate(cm):
        display.text_[i, j].set_text(f"{int(count)}\n{rates[i, j]:.1%}")
    at = "argmax" if ev.threshold is None else f"threshold {ev.threshold:.3f}"
    ax.set(xlabel="predicted", ylabel="true", title=f"Confusion matrix ({ev.split}, {at})")
    return _save(fig, path)


def _binary_curves(ev: Evaluation) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, y, p) per positive class: one for binary, one per class/label otherwise."""
    if ev.task == "binary":
        return [(ev.class_names[-1], ev.y_test, ev.p_test)]
    y = np.eye(ev.p_test.shape[1])[ev.y_test] if ev.task == "multiclass" else ev.y_test
    return [(str(k), y[:, k], ev.p_test[:, k]) for k in range(y.shape[1]) if y[:, k].sum() > 0]


def _operating_point(ev: Evaluation) -> tuple[float, float, float] | None:
    """(FPR, recall, precision) on the judged split at the chosen threshold of a binary model."""
    if ev.task != "binary" or ev.threshold is None:
        return None
    y = np.asarray(ev.y_test).ravel()
    called = np.asarray(ev.p_test).ravel() >= ev.threshold
    tp, fp = np.sum(called & (y == 1)), np.sum(called & (y == 0))
    negatives, positives = max(np.sum(y == 0), 1), max(np.sum(y == 1), 1)
    precision = tp / (tp + fp) if tp + fp else 1.0
    return fp / negatives, tp / positives, precision


def roc_curve(ev: Evaluation, path: Path) -> Path:
    """ROC on a log false-positive axis, from one false positive in the judged split to 1."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    curves = _binary_curves(ev)
    for label, y, p in curves:
        skm.RocCurveDisplay.from_predictions(y, p, ax=ax, name=label, plot_chance_level=False)
    negatives = min(max(int(np.sum(y == 0)), 1) for _, y, _ in curves)
    floor = 1.0 / (2 * negatives)
    chance = np.logspace(np.log10(floor), 0, 50)
    ax.plot(chance, chance, "k:", lw=1, label="chance")
    point = _operating_point(ev)
    if point is not None:
        fpr, recall, _ = point
        ax.plot(max(fpr, floor), recall, "o", color="C3", label=f"threshold {ev.threshold:.3f}")
    ax.set_xscale("log")
    ax.set_aspect("auto")  # the display makes it square, which a log axis squashes
    ax.set(
        xlim=(floor, 1),
        ylim=(0, 1.02),
        xlabel="false positive rate (log)",
        ylabel="true positive rate (recall)",
        title=f"ROC ({ev.split})",
    )
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def pr_curve(ev: Evaluation, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for label, y, p in _binary_curves(ev):
        skm.PrecisionRecallDisplay.from_predictions(y, p, ax=ax, name=label)
    point = _operating_point(ev)
    if point is not None:
        _, recall, precision = point
        ax.plot(recall, precision, "o", color="C3", label=f"threshold {ev.threshold:.3f}")
    ax.set_aspect("auto")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), title=f"Precision-recall ({ev.split})")
    ax.legend(loc="lower left", fontsize="small")
    return _save(fig, path)


COUNTS = ("tp", "fp", "fn", "tn")
NOT_CURVES = ("learning_rate", "epoch_time_s", "samples_per_second")  # of the run, not the model


def curve_panels(history: dict[str, list[float]]) -> dict[str, list[str]]:
    """Keys to draw, one panel per scale: losses (train and validation), validation scores
    (0 to 1) and validation counts; a score or count without a validation twin is drawn as
    trained on."""
    keys = [k for k in history if k.removeprefix("val_") not in NOT_CURVES]
    names = list(dict.fromkeys(k.removeprefix("val_") for k in keys))  # in order, once

    def shown(name: str) -> str:
        return f"val_{name}" if f"val_{name}" in history else name

    losses = [k for k in keys if k.removeprefix("val_").endswith("loss")]
    counts = [shown(n) for n in names if n in COUNTS]
    scores = [shown(n) for n in names if n not in COUNTS and not n.endswith("loss")]
    panels = {"loss": losses, "validation scores": scores, "validation counts": counts}
    return {title: keys for title, keys in panels.items() if keys}


def learning_curves(history: dict[str, list[float]], path: Path) -> Path:
    """One panel per metric scale; epochs from 0, as MLflow numbers the steps of epoch
    metrics. Three panels, not one per metric: a dozen panels took a second to draw."""
    panels = curve_panels(history)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (title, keys) in zip(axes.flat, panels.items(), strict=True):
        for key in keys:
            epochs = np.arange(len(history[key]))
            ax.plot(epochs, history[key], label=key)
        ax.set(title=title, xlabel="epoch (MLflow step)")
        if title == "validation scores":
            ax.set_ylim(-0.02, 1.02)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    """The tight bounding box keeps every label; no ``tight_layout`` pass before it, which
    laid the figure out once more (a fifth of the drawing time) for the same picture."""
    fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)
    return path
