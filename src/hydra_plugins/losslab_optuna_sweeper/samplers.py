"""Samplers and pruners from their config nodes.

A node is instantiated as Hydra would, with what a shared, resumable study needs: a seeded
sampler joining a study that has trials gets a seed derived from both, and the grid sampler
gets its grid from the sweep's search space (its node is partial). Optuna is imported when a
sweep starts, not when Hydra scans its plugins.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution


def build_sampler(
    node: Any,
    distributions: Mapping[str, BaseDistribution],
    n_existing: int,
    n_trials: int | None = None,
) -> optuna.samplers.BaseSampler:
    """:func:`_build_sampler`, without Optuna's warning that a sampler is experimental
    (printed at every sweep for qmc, bruteforce, gp: the user chose it); a TPE node without
    ``n_startup_trials`` gets :func:`startup_trials` of the study's ``n_trials``."""
    import optuna

    if isinstance(node, (DictConfig, dict)) and _is_tpe(node):
        node = dict(node) if isinstance(node, dict) else OmegaConf.to_container(node)
        if node.get("n_startup_trials") is None:
            node["n_startup_trials"] = startup_trials(n_trials)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _build_sampler(node, distributions, n_existing)


def for_worker(
    node: Any,
    distributions: Mapping[str, BaseDistribution],
    n_existing: int,
    n_trials: int | None,
    index: int,
) -> optuna.samplers.BaseSampler:
    """:func:`build_sampler` for worker ``index`` of a sweep: workers that start together see
    the same trials, so each gets a seed of its own, derived in one step from the configured
    seed, the study's trials and its index (two steps could meet: worker 1 of a new study
    and worker 0 joining after one trial). The grid and a scrambled QMC sequence keep
    theirs (:func:`_build_sampler`)."""
    if isinstance(node, (DictConfig, dict)) and node.get("seed") is not None:
        node = dict(node) if isinstance(node, dict) else OmegaConf.to_container(node)
        if not (_is_grid(node) or _shared_sequence(node)):
            import numpy as np

            entropy = [node["seed"], n_existing, index]
            node["seed"] = int(np.random.SeedSequence(entropy).generate_state(1)[0])
            n_existing = 0  # the seed is derived: build_sampler keeps it
    return build_sampler(node, distributions, n_existing, n_trials)


def startup_trials(n_trials: int | None) -> int:
    """TPE's random start-up trials: a quarter of the study's trials, at least 2, at most
    Optuna's 10. Optuna's fixed 10 leaves a 12-trial study 2 trials that TPE chooses."""
    if n_trials is None:
        return 10
    return min(10, max(2, round(n_trials / 4)))


def _is_tpe(node: Any) -> bool:
    import optuna

    target = node.get("_target_")
    if target == f"{__name__}.motpe_sampler":
        return True
    return isinstance(target, str) and _is_a(node, optuna.samplers.TPESampler)


def _build_sampler(
    node: Any, distributions: Mapping[str, BaseDistribution], n_existing: int
) -> optuna.samplers.BaseSampler:
    """The configured sampler; joining a study that has trials, a seed derived from both.

    A resumed study would otherwise draw its first points again. Deriving the seed through
    ``SeedSequence`` (not ``seed + n``) keeps workers with seeds 0 and 1 that join at
    different moments from landing on the same stream. The grid keeps its seed: trial ``n``
    takes point ``n`` of the grid shuffled by it, so every process must shuffle alike.
    A bad value of a key raises here, as Optuna's constructor does.
    """
    import optuna

    if not isinstance(node, (DictConfig, dict)):
        return _without_stop(node or optuna.samplers.TPESampler())
    if _is_grid(node):
        factory = instantiate(node, _partial_=True, _convert_="all")
        if "search_space" in factory.keywords:  # a node that gives its own grid
            return _without_stop(factory())
        return _without_stop(factory(search_space=grid_values(distributions)))
    seed = node.get("seed")
    if seed is None or n_existing == 0 or _shared_sequence(node):
        return _without_stop(instantiate(node, _convert_="all"))
    import numpy as np

    derived = int(np.random.SeedSequence([seed, n_existing]).generate_state(1)[0])
    return _without_stop(instantiate(node, seed=derived, _convert_="all"))


def _shared_sequence(node: Any) -> bool:
    """A scrambled QMC sequence is keyed by its seed: every worker must share it to go on."""
    import optuna

    return _is_a(node, optuna.samplers.QMCSampler) and bool(node.get("scramble"))


def build_pruner(node: Any) -> optuna.pruners.BasePruner:
    import optuna

    if node is None:
        return optuna.pruners.NopPruner()
    if not isinstance(node, (DictConfig, dict)):
        return node
    with warnings.catch_warnings():  # e.g. WilcoxonPruner: experimental, and chosen
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return instantiate(node, _convert_="all")


def grid_size(sampler: Any) -> int | None:
    """How many trials ``sampler`` has distinct points for: a grid sampler's number of
    points, ``None`` for any other sampler (it draws without end).

    The sweep caps ``n_trials`` (the study's total) at it: Optuna's grid sampler, asked for
    more trials than points, evaluates points again.
    """
    import optuna

    if isinstance(sampler, optuna.samplers.GridSampler):
        return len(sampler._all_grids)  # the product of the lengths of the values
    return None


def grid_values(distributions: Mapping[str, BaseDistribution]) -> dict[str, list]:
    """The values the grid takes for each parameter: a choice's choices, every step of a
    stepped range from low to high (Optuna's bounds are inclusive).

    Raises ``SearchSpaceError`` (a ``ValueError``) for a continuous interval, which has no
    grid. A parameter drawn by ``custom_search_space`` is not on the grid either: it fails
    when the trial asks for it.
    """
    from optuna.distributions import CategoricalDistribution

    from hydra_plugins.losslab_optuna_sweeper.search_space import SearchSpaceError

    grid: dict[str, list] = {}
    for key, dist in distributions.items():
        if isinstance(dist, CategoricalDistribution):
            grid[key] = list(dist.choices)
        elif getattr(dist, "step", None) is not None:
            grid[key] = _steps(dist.low, dist.high, dist.step)
        else:
            raise SearchSpaceError(
                f"{key}: the grid sampler needs a finite set of values, choice(..) or "
                f"range(..), not a continuous interval({dist.low}, {dist.high})"
            )
    return grid


def _steps(low: float, high: float, step: float) -> list:
    count = round((high - low) / step) + 1
    if isinstance(low, int) and isinstance(step, int):
        return [low + i * step for i in range(count)]
    # 0.1 * 3 is 0.30000000000000004: the job would get that digit noise as its value
    return [min(round(low + i * step, 12), high) for i in range(count)]


def _is_grid(node: Any) -> bool:
    import optuna

    return _is_a(node, optuna.samplers.GridSampler)


def _is_a(node: Any, cls: type) -> bool:
    target = node.get("_target_")
    if isinstance(target, str):
        target = get_object(target)
    return isinstance(target, type) and issubclass(target, cls)


def _without_stop(sampler: optuna.samplers.BaseSampler) -> optuna.samplers.BaseSampler:
    """The sampler, with ``study.stop()`` from its ``after_trial`` made harmless.

    The grid and brute-force samplers stop the study once their space is done, which raises
    outside ``study.optimize``: in this ask-and-tell sweep, on the last grid point, after the
    trial's result was saved. Here ``n_trials`` (capped by :func:`grid_size`) ends the sweep.
    """
    after_trial = sampler.after_trial

    def after_trial_without_stop(study: Any, trial: Any, state: Any, values: Any) -> None:
        try:
            after_trial(study, trial, state, values)
        except RuntimeError as err:
            if "Study.stop" not in str(err):
                raise
            sampler._losslab_exhausted = True  # read by exhausted(): the sweep ends there

    sampler.after_trial = after_trial_without_stop
    return sampler


def exhausted(sampler: Any) -> bool:
    """Whether the sampler asked to stop the study: a grid or brute-force space is done (a
    brute-force sampler would then draw points it has tried)."""
    return bool(getattr(sampler, "_losslab_exhausted", False))


def motpe_sampler(
    n_ehvi_candidates: int | None = None, **options: Any
) -> optuna.samplers.TPESampler:
    """``hydra/sweeper/sampler=motpe``: a TPESampler, which handles several objectives since
    Optuna 4 removed MOTPESampler; MOTPE's ``n_ehvi_candidates`` is its ``n_ei_candidates``."""
    import optuna

    if n_ehvi_candidates is not None:
        options["n_ei_candidates"] = n_ehvi_candidates
    return optuna.samplers.TPESampler(**options)
