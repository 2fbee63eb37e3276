"""``repeats=k``: every configuration of a command run k times, on seeds seed .. seed+k-1.

One draw per configuration ranks seed noise (a remedy's recall at 1% FPR moves by 0.4 between
seeds on the default data), so repeats are a dimension of the study: the command becomes a
multirun whose seeds Hydra sweeps as ``seed=range(seed, seed+k)``, crossed with whatever else
it sweeps, under one parent run. The seed draws the splits, folds, weights and sampling, so
each repeat is a fresh draw of all of them; ``losslab compare`` groups runs that differ only
in seed (:func:`group_of`, also each job's ``losslab.group`` tag).
"""

from __future__ import annotations

from collections.abc import Sequence

KEY = "repeats"
# Hydra's own modes: a command given one of them runs it instead of the multirun
HYDRA_MODES = ("-m", "--multirun", "-c", "--cfg", "-i", "--info", "-sc", "--shell-completion")
SEARCHES = ("hparams_search=", "hydra/sweeper=")


def key_of(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def expand(args: Sequence[str]) -> list[str]:
    """``args`` with ``repeats=k`` turned into a multirun over k seeds (unchanged without it).

    Raises ConfigError (one line, exit 2) for a count that is not a whole number >= 1, a
    seed list beside it, or an Optuna search (its trials are the search's, not repeats)."""
    from losslab.config import ConfigError, TrainConfig

    given = [a for a in args if key_of(a) == KEY]
    if not given:
        return list(args)
    value = given[-1].split("=", 1)[1]
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{KEY}={value}: a whole number of runs per configuration, 1 or more")
    rest = [a for a in args if key_of(a) != KEY]
    seeds = [a.split("=", 1)[1] for a in rest if key_of(a) == "seed"]
    search = next((a for a in rest if a.startswith(SEARCHES)), None)
    if search is not None:
        raise ConfigError(
            f"{KEY}={value} with {search}: a search's trials cannot be repeated; "
            "repeat the search with other hydra.sweeper.sampler.seed values"
        )
    if seeds and not seeds[-1].lstrip("-").isdigit():
        raise ConfigError(
            f"{KEY}={value} with seed={seeds[-1]}: give the number of repeats or the list of "
            "seeds, not both (repeats start at one seed=N)"
        )
    first = int(seeds[-1]) if seeds else TrainConfig.seed
    mode = [] if any(a.split("=")[0] in HYDRA_MODES for a in rest) else ["-m"]
    rest = [a for a in rest if key_of(a) != "seed"]
    return [*mode, *rest, f"seed=range({first},{first + int(value)})"]


def group_of(overrides: Sequence[str]) -> str:
    """What a run's configuration is, apart from its seed: its overrides but the seed's."""
    kept = sorted(o for o in overrides if key_of(o) != "seed")
    return " ".join(kept) or "(defaults)"
