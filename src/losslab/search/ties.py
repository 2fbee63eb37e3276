"""The one trial a one-objective sweep chooses, and the ties it was chosen from.

A recall at a fixed false-positive rate on a few dozen validation minority samples moves in
steps of several percent and saturates at 1, so several trials often share the best value.
Optuna's ``best_trial`` then takes the lowest trial number: trial order decides, and nothing
says so. Here the tied trials are ranked by a second validation figure that moves with every
sample's rank, which each job records on its trial (:data:`TIE_BREAKER`); the trial number
decides only among trials tied on both, and the rule that decided is returned with them.

A trial whose model answers every validation sample alike (a diverged model; its job marks
it :data:`DEGENERATE`) is never chosen: its objective is the validation prevalence or
chance, which can still beat real trials on a hard task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

# the standardised partial ROC AUC up to the operating point's false-positive rate, on the
# delivered rule's out-of-fold validation scores (losslab.evaluate.partial_roc_auc)
TIE_BREAKER = "val_final_partial_roc_auc"
# what the sweep prints of the chosen trial at its end: test figures, never used to choose
REPORTED = ("test_recall", "test_majority_recall", "test_recall_at_fpr", "test_precision")
# a trial's user attribute: why its model is no model (constant validation predictions)
DEGENERATE = "degenerate"


@dataclass(frozen=True)
class Choice:
    """The chosen trial, every trial that shared its objective value, and what decided."""

    trial: FrozenTrial
    tied: list[FrozenTrial]
    rule: str


def tie_value(trial: FrozenTrial) -> float:
    """The trial's tie-breaker (higher is better); -inf where its job recorded none."""
    value = trial.user_attrs.get(TIE_BREAKER)
    if value is None or not math.isfinite(float(value)):
        return -math.inf
    return float(value)


def candidates(study: optuna.Study) -> list[FrozenTrial]:
    """The complete trials a sweep may choose: none marked :data:`DEGENERATE`."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [t for t in complete if DEGENERATE not in t.user_attrs]


def choose(study: optuna.Study) -> Choice | None:
    """The best complete trial of a one-objective study, ties broken by :data:`TIE_BREAKER`
    (higher is better), then by the lower trial number; None before a trial that is not
    degenerate completes."""
    complete = candidates(study)
    if not complete or len(study.directions) != 1:
        return None
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best = (max if maximize else min)(t.value for t in complete)
    tied = [t for t in complete if math.isclose(t.value, best, rel_tol=1e-12, abs_tol=0.0)]
    ranked = sorted(tied, key=lambda t: (-tie_value(t), t.number))
    if len(tied) == 1:
        rule = "objective"
    elif tie_value(ranked[0]) > tie_value(ranked[1]):
        rule = f"objective, then higher {TIE_BREAKER}"
    else:
        rule = f"objective, then {TIE_BREAKER}, then lower trial number"
    return Choice(ranked[0], sorted(tied, key=lambda t: t.number), rule)
