"""Structured configs of the sweeper, its samplers and its pruners, registered with Hydra.

Samplers and pruners are Optuna's own classes, instantiated from ``_target_`` nodes, so any
constructor argument can be set from the command line
(``hydra.sweeper.pruner.n_warmup_steps=2``) and any other Optuna sampler or pruner can be
named by its class path.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class TPESamplerConf:
    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = 42
    n_startup_trials: int = 10
    multivariate: bool = False
    group: bool = False  # with multivariate: conditional parameters modelled per subspace
    constant_liar: bool = False  # set true when several trials run at once


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = 42


@dataclass
class CmaEsSamplerConf:
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: int | None = 42
    n_startup_trials: int = 1
    warn_independent_sampling: bool = True


@dataclass
class MedianPrunerConf:
    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5  # trials finished before any is pruned
    n_warmup_steps: int = 1  # epochs of each trial before it can be pruned
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class SuccessiveHalvingPrunerConf:
    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0


@dataclass
class HyperbandPrunerConf:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"
    reduction_factor: int = 3


@dataclass
class NopPrunerConf:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class OptunaSweeperConf:
    """``hydra.sweeper``: what to search, with which study, sampler and pruner."""

    _target_: str = "hydra_plugins.losslab_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    _recursive_: bool = False  # the sweeper seeds the sampler from the study's state
    defaults: list[Any] = field(
        default_factory=lambda: ["_self_", {"sampler": "tpe"}, {"pruner": "median"}]
    )
    sampler: Any = None
    pruner: Any = None
    # "maximize" | "minimize", or a list of them for a multi-objective study
    direction: Any = "maximize"
    study_name: str | None = None  # default: the sweep folder's name
    # add trials to a named study made for other data, objective or search space
    allow_changed_study: bool = False
    # SQLAlchemy URL (sqlite:///x.db, postgresql+psycopg://u@h/db) or journal:/path/x.log;
    # default: sqlite:///<sweep dir>/optuna.db
    storage: str | None = None
    n_trials: int = 20  # trials in the study in total: a re-run continues up to this number
    n_jobs: int = 1  # trials launched at once (per batch of the launcher)
    load_if_exists: bool = True
    max_failure_rate: float = 0.5  # stop once more than this share of n_trials failed
    # search space, in the syntax of hydra-optuna-sweeper: interval(a, b), choice(..),
    # range(a, b, step), tag(log, interval(a, b)); plain values are fixed overrides
    params: dict[str, str] | None = None
    # "pkg.module.function": called as fn(cfg, trial) for conditional parameters; may return
    # a dict of further fixed overrides
    custom_search_space: str | None = None
    # trials of killed jobs: with an RDB storage, a trial whose heartbeat (every
    # heartbeat_interval s, from the job and the waiting sweeper) stopped for grace_period s
    # ends FAIL when a sweep next runs on the study, and is retried up to max_retry times
    heartbeat_interval: int | None = 60
    grace_period: int | None = None  # default: twice heartbeat_interval
    max_retry: int = 0


def register() -> None:
    cs = ConfigStore.instance()
    provider = "losslab_optuna_sweeper"
    cs.store(
        group="hydra/sweeper", name="losslab_optuna", node=OptunaSweeperConf, provider=provider
    )
    for name, node in {
        "tpe": TPESamplerConf,
        "random": RandomSamplerConf,
        "cmaes": CmaEsSamplerConf,
    }.items():
        cs.store(group="hydra/sweeper/sampler", name=name, node=node, provider=provider)
    for name, node in {
        "median": MedianPrunerConf,
        "successive_halving": SuccessiveHalvingPrunerConf,
        "hyperband": HyperbandPrunerConf,
        "none": NopPrunerConf,
    }.items():
        cs.store(group="hydra/sweeper/pruner", name=name, node=node, provider=provider)


register()
