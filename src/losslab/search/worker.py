"""A worker that pulls trials from a shared study until the study has its trials.

Batch mode asks ``n_jobs`` trials, launches them and waits for the slowest; a trial pruned
after one epoch leaves its job slot idle meanwhile. A worker instead asks for the next trial
as soon as its last one ended (a queued one first: Optuna's ``ask`` pops WAITING trials),
runs it, tells its result and asks again, until the study has ``n_trials`` finished trials.
Several workers, on one machine or many, share one study through its storage.

Counting is what makes several workers stop at ``n_trials`` and not past it: a worker asks
only while finished and RUNNING trials are fewer than ``n_trials``, and the count and the
ask happen under one lock on the storage (:func:`losslab.search.storage.creation_lock`), so
two workers never take the last place both. A worker with no place left waits instead of
ending while others still run: a trial of theirs that fails for its infrastructure is queued
again and needs a worker. Trials marked ``infrastructure`` (failed by the store, a full disk,
a worker stopped) are not counted: their params are queued again as a new trial.

The worker knows nothing of Hydra or of the job: ``Trials`` says how to ask, run and end
one (the sweeper plugin binds them to its own ask and tell).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from losslab.search.storage import creation_lock

log = logging.getLogger(__name__)

INFRASTRUCTURE_ATTR = "infrastructure"  # a trial failed by the store, not by its params
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
COUNTED = (*FINISHED, TrialState.RUNNING)
POLL_S = 2.0


def counted(study: optuna.Study, states: tuple[TrialState, ...] = COUNTED) -> int:
    """Trials in ``states`` that count towards ``n_trials`` (not those failed by their
    infrastructure, whose params were queued again)."""
    trials = study.get_trials(deepcopy=False, states=states)
    return sum(not t.user_attrs.get(INFRASTRUCTURE_ATTR) for t in trials)


@dataclass
class Trials:
    """What a worker does with one trial. ``ask``: a new RUNNING trial; ``run``: train it and
    tell its result, returning the state it ended in; ``requeue``: end it FAIL as an
    infrastructure failure and queue its params again; ``fail``: end it FAIL with a reason;
    ``stop``: whether to stop after this trial (raising ends the worker, e.g. too many
    failures); ``idle``: called while waiting for a place (end the trials of dead workers)."""

    ask: Callable[[], Any]
    run: Callable[[Any], TrialState]
    requeue: Callable[[Any, str], Any]
    fail: Callable[[Any, str], Any]
    stop: Callable[[], bool] = lambda: False
    idle: Callable[[], None] = lambda: None


def pull(
    study: optuna.Study, n_trials: int, trials: Trials, poll_s: float = POLL_S
) -> list[TrialState]:
    """Run trials until ``study`` has ``n_trials`` finished ones (or ``trials.stop()``); the
    states of the trials this worker ran."""
    states: list[TrialState] = []
    while counted(study, FINISHED) < n_trials:
        trial = ask_if_room(study, n_trials, trials.ask)
        if trial is None:
            trials.idle()
            time.sleep(poll_s)
            continue
        states.append(run_one(study, trial, trials))
        if trials.stop():
            break
    return states


def ask_if_room(study: optuna.Study, n_trials: int, ask: Callable[[], Any]) -> Any | None:
    """A new trial while fewer than ``n_trials`` are finished or running, else None."""
    with creation_lock(study._storage):
        if counted(study) >= n_trials:
            return None
        return ask()


def run_one(study: optuna.Study, trial: Any, trials: Trials) -> TrialState:
    """One trial, never left RUNNING: stopped (Ctrl-C, SIGTERM raised as an interrupt, an
    exit) its params are queued again for another worker and the stop goes on; broken by an
    error, it ends FAIL with it."""
    try:
        return trials.run(trial)
    except Exception as err:
        if _running(study, trial):
            trials.fail(trial, f"the worker failed: {type(err).__name__}: {err}")
        raise
    except BaseException as stop:  # KeyboardInterrupt, SystemExit: the process is ending
        if _running(study, trial):
            reason = f"the worker was stopped ({type(stop).__name__}: {stop})"
            trials.requeue(trial, reason)
        raise


def _running(study: optuna.Study, trial: Any) -> bool:
    return study._storage.get_trial(trial._trial_id).state == TrialState.RUNNING
