"""The figures every run logs: confusion matrix, ROC and PR curves, learning curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

from losslab.evaluate import Evaluation  # noqa: E402


def confusion_matrix(ev: Evaluation, path: Path) -> Path:
    cm = ev.confusion
    names = ev.class_names if len(ev.class_names) == len(cm) else [str(i) for i in range(len(cm))]
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(cm), 1.0 + 0.6 * len(cm)))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(
            j,
            i,
            str(int(v)),
            ha="center",
            va="center",
            color="white" if v > cm.max() / 2 else "black",
        )
    ax.set(
        xticks=range(len(cm)),
        yticks=range(len(cm)),
        xticklabels=names,
        yticklabels=names,
        xlabel="predicted",
        ylabel="true",
    )
    title = "confusion matrix" + (f" (threshold {ev.threshold:.3f})" if ev.threshold else "")
    ax.set_title(title)
    return _save(fig, path)


def _binary_curves(ev: Evaluation) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, y, p) per positive class: one for binary, one per class/label otherwise."""
    if ev.task == "binary":
        return [(ev.class_names[-1], ev.y_test, ev.p_test)]
    y = np.eye(ev.p_test.shape[1])[ev.y_test] if ev.task == "multiclass" else ev.y_test
    return [(str(k), y[:, k], ev.p_test[:, k]) for k in range(y.shape[1]) if y[:, k].sum() > 0]


def roc_curve(ev: Evaluation, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    for label, y, p in _binary_curves(ev):
        fpr, tpr, _ = skm.roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{label} (AUC {skm.auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def pr_curve(ev: Evaluation, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    for label, y, p in _binary_curves(ev):
        precision, recall, _ = skm.precision_recall_curve(y, p)
        ap = skm.average_precision_score(y, p)
        ax.plot(recall, precision, label=f"{label} (AP {ap:.3f})")
    ax.set(
        xlabel="recall",
        ylabel="precision",
        title="precision-recall (test)",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    ax.legend(loc="lower left", fontsize="small")
    return _save(fig, path)


def learning_curves(history: dict[str, list[float]], path: Path) -> Path:
    """One panel per metric with its validation twin."""
    keys = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    cols = min(3, max(1, len(keys)))
    rows = int(np.ceil(len(keys) / cols)) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label="val")
        ax.set(title=key, xlabel="epoch")
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
