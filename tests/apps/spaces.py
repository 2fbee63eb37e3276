"""Custom search spaces for the toy app's sweeps (``hydra.sweeper.custom_search_space``)."""

from __future__ import annotations

from typing import Any


def fails_on_trial_1(config: Any, trial: Any) -> dict[str, Any]:
    """Suggests ``z``; raises for trial 1, as a buggy search space would."""
    if trial.number == 1:
        raise ValueError("no space for trial 1")
    trial.suggest_int("z", 0, 2)
    return {}
