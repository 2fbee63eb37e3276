"""What a finished sweep leaves beside its jobs: ``optimization_results.yaml`` (the published
plugin's file, same keys) and one closing line on the terminal."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import OmegaConf

from losslab.search.settings import best_trials

if TYPE_CHECKING:  # Hydra imports every plugin module at start, --help included
    import optuna

log = logging.getLogger(__name__)

RESULTS_FILE = "optimization_results.yaml"


def write(study: optuna.Study, sweep_dir: Path) -> Path | None:
    """``best_params`` and ``best_value`` of the chosen trial (``losslab.search.ties``), or
    the Pareto front as ``solutions``."""
    from losslab.search.ties import choose

    best = best_trials(study)
    if not best:
        return None
    if len(study.directions) == 1:
        top = choose(study).trial
        content = {"name": "optuna", "best_params": top.params, "best_value": top.value}
    else:
        solutions = [{"params": t.params, "values": t.values} for t in best]
        content = {"name": "optuna", "solutions": solutions}
    path = Path(sweep_dir) / RESULTS_FILE
    OmegaConf.save(OmegaConf.create(content), path)
    return path


def print_best(study: optuna.Study) -> None:
    """``12 trials (9 complete, 2 pruned, 1 fail); best trial 4: 0.91; lr=0.00031``."""
    from optuna.trial import TrialState

    states = [t.state for t in study.trials]
    counts = ", ".join(
        f"{states.count(state)} {state.name.lower()}"
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    )
    best = best_trials(study)
    if not best:
        log.info("%d trials (%s); none complete", len(states), counts)
    elif len(study.directions) > 1:
        log.info("%d trials (%s); Pareto front: %d trials", len(states), counts, len(best))
        for trial in best:
            log.info("  trial %d: %s; %s", trial.number, _values(trial), _params(trial))
    else:
        _print_chosen(study, f"{len(states)} trials ({counts})")


def _print_chosen(study: optuna.Study, head: str) -> None:
    """The chosen trial, and the trials that shared its value with the rule that decided."""
    from losslab.search.ties import REPORTED, TIE_BREAKER, choose, tie_value

    choice = choose(study)
    top = choice.trial
    log.info("%s; chosen trial %d: %s; %s", head, top.number, _values(top), _params(top))
    if len(choice.tied) > 1:
        log.info(
            "  %d trials tied at %s; chosen by %s:", len(choice.tied), _values(top), choice.rule
        )
        for trial in choice.tied:
            log.info("  trial %d: %s %s", trial.number, TIE_BREAKER, _brief(tie_value(trial)))
    test = [f"{k[5:]} {top.user_attrs[k]:.4f}" for k in REPORTED if k in top.user_attrs]
    if test:
        log.info("test, chosen trial %d: %s", top.number, " | ".join(test))


def _values(trial: optuna.trial.FrozenTrial) -> str:
    return " ".join(_brief(v) for v in trial.values)


def _params(trial: optuna.trial.FrozenTrial) -> str:
    return " ".join(f"{key}={_brief(value)}" for key, value in trial.params.items())


def _brief(value: object) -> str:
    """3 significant digits for people; the exact values are in the study and the runs."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)
