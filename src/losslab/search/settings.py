"""What losslab reads from a sweep's ``hydra.sweeper`` node: the objectives' directions, the
search space's lines, the best trials of a study. The sweeper plugin imports these from here
(losslab never imports the plugin), so the study's identity and report read the node the same
way the sweeper does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omegaconf import ListConfig, OmegaConf

if TYPE_CHECKING:
    import optuna

DIRECTIONS = ("maximize", "minimize")


class SettingsError(ValueError):
    """A ``hydra.sweeper`` setting the sweeper cannot run with."""


def directions(direction: Any) -> list[str]:
    """``maximize``, ``[maximize, minimize]``: one direction per objective."""
    if isinstance(direction, ListConfig):
        direction = OmegaConf.to_container(direction)
    values = [direction] if not isinstance(direction, (list, tuple)) else list(direction)
    values = [getattr(v, "name", v) for v in values]  # the published plugin's Direction enum
    for value in values:
        if value not in DIRECTIONS:
            raise SettingsError(
                f"hydra.sweeper.direction={value!r}: use maximize or minimize (a list of them "
                "for several objectives)"
            )
    if not values:
        raise SettingsError("hydra.sweeper.direction=[]: give one direction per objective")
    return values


def space_lines(sweeper: Mapping[str, Any]) -> dict[str, Any]:
    """The search space as written: ``params`` lines and the deprecated ``search_space`` node,
    as plain values (what makes two sweeps' spaces the same)."""
    plain = {}
    for key in ("params", "search_space"):
        value = sweeper.get(key)
        plain[key] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return plain


def best_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The chosen trial (one objective, :func:`losslab.search.ties.choose`) or the Pareto
    front (several) among the trials that are not degenerate; none before one completes.
    Optuna's own ``best_trials`` would count a degenerate trial, and it could hide real ones
    from the front."""
    from optuna.study._multi_objective import _get_pareto_front_trials_by_trials

    from losslab.search.ties import candidates, choose

    if len(study.directions) == 1:
        choice = choose(study)
        return [] if choice is None else [choice.trial]
    return _get_pareto_front_trials_by_trials(candidates(study), study.directions)
