"""Metric and objective names: where a value comes from, which way is better, and whether a
sweep may select on it or prune by it.

Training, early stopping, the pruning callback, the sweep checks and the report all ask here,
so a metric's direction is decided once. Keras knows the direction of its own metric objects
but not of a name in a config (``val_recall_at_fpr`` is ours, ``val_fp`` is refused by its
``auto`` mode), so the rule is a table of the names losslab records.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from losslab.config import ConfigError

EPOCH_PREFIX = "val_"
# computed once after training, from the model's predictions
EVALUATION_PREFIXES = ("test_at_0.5_", "test_", "val_final_", "val_at_threshold_")
TEST_PREFIX = "test_"
# recorded names without their split prefix -> True when higher is better
HIGHER_IS_BETTER = {
    "loss": False,
    "accuracy": True,
    "precision": True,
    "recall": True,
    "majority_recall": True,
    "f1": True,
    "macro_f1": True,
    "micro_f1": True,
    "min_recall": True,
    "roc_auc": True,
    "partial_roc_auc": True,
    "pr_auc": True,
    "recall_at_fpr": True,
    "recall_at_precision": True,
    "precision_at_train_prevalence": True,
    "f1_at_train_prevalence": True,
    "accuracy_at_train_prevalence": True,
    "pr_auc_at_train_prevalence": True,
    "fpr_bound": False,
    "tp": True,
    "tn": True,
    "fp": False,
    "fn": False,
    "objective": None,
    "threshold": None,
}


def base_name(metric: str) -> str:
    """``val_recall_3`` -> ``recall``: the name without split prefix or class index."""
    for prefix in (*EVALUATION_PREFIXES, EPOCH_PREFIX):
        if metric.startswith(prefix):
            metric = metric[len(prefix) :]
            break
    return re.sub(r"_\d+$", "", metric)


def is_test(metric: str) -> bool:
    return metric.startswith(TEST_PREFIX)


def from_evaluation(metric: str) -> bool:
    """Computed once after training (not recorded every epoch)."""
    return metric == "threshold" or metric.startswith(EVALUATION_PREFIXES)


def prunable(metric: str) -> bool:
    """Only a validation metric recorded every epoch can be reported while training."""
    return metric.startswith(EPOCH_PREFIX) and not from_evaluation(metric)


def needs_both_classes(metric: str) -> bool:
    """A validation score that ranks or thresholds (recall, AUC, ...): meaningless on a
    validation split holding one class. Loss and accuracy are defined on any split."""
    return metric.startswith(EPOCH_PREFIX) and base_name(metric) not in ("loss", "accuracy")


def maximizes(
    metric: str, mode: str = "auto", objective: str | None = None, direction: str = "maximize"
) -> bool:
    """Whether higher values of ``metric`` are better.

    ``mode`` ``max``/``min`` decides; ``auto`` follows ``direction`` when ``metric`` is the
    run's ``objective``, else the table of recorded names; an unknown name needs a mode.
    """
    if mode in ("max", "min"):
        return mode == "max"
    if metric == objective:
        return direction == "maximize"
    higher = HIGHER_IS_BETTER.get(base_name(metric))
    if higher is None:
        raise ConfigError(
            f"{metric!r} has no known direction; set trainer.early_stopping.mode=max or min"
        )
    return higher


def direction_of(metric: str | Sequence[str]) -> str | list[str]:
    """``maximize`` or ``minimize``: the default ``direction`` of an objective (a list of
    them for a list of objectives).

    A name losslab does not record gets ``maximize``; training refuses it anyway, with the
    names it can take (:func:`check_recorded`).
    """
    if not isinstance(metric, str):
        return [str(direction_of(str(m))) for m in metric]
    return "minimize" if HIGHER_IS_BETTER.get(base_name(metric)) is False else "maximize"


def first_objective(objective: str | Sequence[str]) -> str:
    """The objective early stopping monitors by default: the first of several."""
    if isinstance(objective, str):
        return objective
    return str(objective[0]) if len(objective) else ""  # refused with the objective's check


def check_sweepable(objective: str) -> None:
    """A sweep that selects on test data reports a biased best: refuse it."""
    if is_test(objective):
        raise ConfigError(
            f"objective={objective!r} is computed on the test split; a sweep must select on "
            "validation data: use e.g. objective=val_recall_at_fpr or objective=val_pr_auc"
        )


def check_recorded(objective: str, epoch_keys: list[str]) -> None:
    """The objective is an epoch metric or one that evaluation computes."""
    if objective in epoch_keys or from_evaluation(objective):
        return
    raise ConfigError(
        f"objective={objective!r} is not recorded; choose one of {sorted(epoch_keys)} "
        f"or an evaluation metric starting with {list(EVALUATION_PREFIXES)}"
    )
