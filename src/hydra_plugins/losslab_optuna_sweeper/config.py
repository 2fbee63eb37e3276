"""Structured configs of the sweeper, its samplers and its pruners, registered with Hydra.

Samplers and pruners are Optuna's own classes, instantiated from ``_target_`` nodes. Each
node has one typed field per constructor argument of its Optuna 5 class, so any of them can
be set from the command line without ``+`` (``hydra.sweeper.sampler.n_ei_candidates=30``),
and a typo is refused when the config is composed. Defaults are Optuna's, except a fixed
``seed`` (42) and the choices losslab made before (TPE not multivariate, no constant liar;
the median pruner's one warm-up epoch). Arguments that take an object or a function are
``Any``: give them a node with a ``_target_``. Any other sampler or pruner can be named by
its class path. The groups and names are those of the published hydra-optuna-sweeper.

Hydra imports this module at every start, ``--help`` included: it imports nothing heavy.
"""

import importlib.util
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

PROVIDER = "losslab_optuna_sweeper"


# -- samplers ----------------------------------------------------------------------------
@dataclass
class TPESamplerConf:
    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = 42
    n_startup_trials: int | None = None  # null: a quarter of n_trials, 2 to 10 (samplers.py)
    n_ei_candidates: int = 24
    multivariate: bool | None = False  # null: Optuna decides (true for one objective)
    group: bool = False  # with multivariate: conditional parameters modelled per subspace
    constant_liar: bool = False  # set true when several trials run at once
    # deprecated by Optuna 4.x (null keeps Optuna's value without a warning)
    consider_prior: bool | None = None
    prior_weight: float | None = None
    consider_magic_clip: bool | None = None
    consider_endpoints: bool | None = None
    warn_independent_sampling: bool | None = None
    gamma: Any = None  # callable n -> n: how many finished trials count as good
    weights: Any = None  # callable n -> array
    constraints_func: Any = None  # deprecated by Optuna 5: trial.set_constraint


@dataclass
class MOTPESamplerConf(TPESamplerConf):
    """Optuna 4 removed MOTPESampler: its TPESampler optimizes several objectives itself, so
    ``motpe`` builds a TPESampler and a config written for MOTPE keeps its meaning."""

    _target_: str = "hydra_plugins.losslab_optuna_sweeper.samplers.motpe_sampler"
    n_ehvi_candidates: int | None = None  # MOTPE's name of n_ei_candidates; wins when set


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = 42


@dataclass
class CmaEsSamplerConf:
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: int | None = 42
    n_startup_trials: int = 1
    x0: dict[str, Any] | None = None  # deprecated by Optuna 4.9
    sigma0: float | None = None  # deprecated by Optuna 4.9
    independent_sampler: Any = None
    warn_independent_sampling: bool = True
    consider_pruned_trials: bool = False
    restart_strategy: str | None = None  # deprecated by Optuna 4.4: ignored
    popsize: int | None = None
    inc_popsize: int = -1  # deprecated by Optuna 4.4: ignored
    use_separable_cma: bool = False
    with_margin: bool = False
    lr_adapt: bool = False
    source_trials: Any = None  # FrozenTrials of a similar task (warm start)


@dataclass
class NSGAIISamplerConf:
    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: int | None = 42
    population_size: int = 50
    mutation: Any = None
    mutation_prob: float | None = None
    crossover: Any = None  # e.g. {_target_: optuna.samplers.nsgaii.SBXCrossover}
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5
    constraints_func: Any = None
    elite_population_selection_strategy: Any = None
    child_generation_strategy: Any = None
    after_trial_strategy: Any = None


@dataclass
class NSGAIIISamplerConf(NSGAIISamplerConf):
    _target_: str = "optuna.samplers.NSGAIIISampler"
    reference_points: Any = None  # one point per row, one column per objective
    dividing_parameter: int = 3


@dataclass
class QMCSamplerConf:
    _target_: str = "optuna.samplers.QMCSampler"
    seed: int | None = 42
    qmc_type: str = "sobol"  # sobol | halton
    scramble: bool = False
    independent_sampler: Any = None
    warn_asynchronous_seeding: bool = True
    warn_independent_sampling: bool = True


@dataclass
class GPSamplerConf:
    """Gaussian-process Bayesian optimization; needs PyTorch once past n_startup_trials."""

    _target_: str = "optuna.samplers.GPSampler"
    seed: int | None = 42
    n_startup_trials: int = 10
    independent_sampler: Any = None
    deterministic_objective: bool = False
    constraints_func: Any = None
    warn_independent_sampling: bool = True


@dataclass
class GridSamplerConf:
    """Every combination of the values of ``choice()`` and ``range()`` parameters, in an
    order shuffled by ``seed``. Partial: the sweep gives it ``search_space`` from its params,
    and stops when the grid is done (``n_trials`` at most the number of points)."""

    _target_: str = "optuna.samplers.GridSampler"
    _partial_: bool = True
    seed: int | None = 42


@dataclass
class BruteForceSamplerConf:
    """Every combination of discrete values, conditional parameters included."""

    _target_: str = "optuna.samplers.BruteForceSampler"
    seed: int | None = 42
    avoid_premature_stop: bool = False


# -- pruners -----------------------------------------------------------------------------
@dataclass
class MedianPrunerConf:
    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5  # trials finished before any is pruned
    n_warmup_steps: int = 1  # epochs of each trial before it can be pruned
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class PercentilePrunerConf:
    _target_: str = "optuna.pruners.PercentilePruner"
    percentile: float = MISSING  # 0-100: pruned below this percentile of the other trials
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class SuccessiveHalvingPrunerConf:
    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"  # an int, or "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


@dataclass
class HyperbandPrunerConf:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"  # an int, or "auto"
    reduction_factor: int = 3
    bootstrap_count: int = 0


@dataclass
class ThresholdPrunerConf:
    _target_: str = "optuna.pruners.ThresholdPruner"
    lower: float | None = None
    upper: float | None = None
    n_warmup_steps: int = 0
    interval_steps: int = 1


@dataclass
class WilcoxonPrunerConf:
    _target_: str = "optuna.pruners.WilcoxonPruner"
    p_threshold: float = 0.1
    n_startup_steps: int = 2


@dataclass
class PatientPrunerConf:
    _target_: str = "optuna.pruners.PatientPruner"
    wrapped_pruner: Any = None  # a pruner node, e.g. {_target_: optuna.pruners.MedianPruner}
    patience: int = MISSING  # steps without improvement before the trial is pruned
    min_delta: float = 0.0


@dataclass
class NopPrunerConf:
    _target_: str = "optuna.pruners.NopPruner"


SAMPLERS: dict[str, type] = {
    "tpe": TPESamplerConf,
    "motpe": MOTPESamplerConf,
    "random": RandomSamplerConf,
    "cmaes": CmaEsSamplerConf,
    "nsgaii": NSGAIISamplerConf,
    "nsgaiii": NSGAIIISamplerConf,
    "qmc": QMCSamplerConf,
    "gp": GPSamplerConf,
    "grid": GridSamplerConf,
    "bruteforce": BruteForceSamplerConf,
}
PRUNERS: dict[str, type] = {
    "median": MedianPrunerConf,
    "percentile": PercentilePrunerConf,
    "successive_halving": SuccessiveHalvingPrunerConf,
    "hyperband": HyperbandPrunerConf,
    "threshold": ThresholdPrunerConf,
    "wilcoxon": WilcoxonPrunerConf,
    "patient": PatientPrunerConf,
    "none": NopPrunerConf,
}


# -- the sweeper -------------------------------------------------------------------------
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
    # at most this many trials in this command (a scheduled worker's share of each firing);
    # null: as many as the study still needs
    trials_per_run: int | None = None
    n_jobs: int = 1  # trials launched at once (per batch of the launcher)
    # worker mode: this many submitit jobs (hydra/launcher=submitit_local or Slurm) that each
    # pull the next trial as soon as their last one ended; 0: batches of n_jobs
    workers: int = 0
    # with workers: return once they are submitted, the parent run left open; follow the
    # study with `losslab sweep status <study>`, which ends the parent once it is done
    detach: bool = False
    load_if_exists: bool = True
    max_failure_rate: float = 0.5  # stop once more than this share of n_trials failed
    # search space, in the syntax of hydra-optuna-sweeper: interval(a, b), choice(..),
    # range(a, b, step), tag(log, interval(a, b)); plain values are fixed overrides
    params: dict[str, str] | None = None
    search_space: Any = None  # hydra-optuna-sweeper 1.1's deprecated form of params
    # "pkg.module.function": called as fn(cfg, trial) for conditional parameters; may return
    # a dict of further fixed overrides
    custom_search_space: str | None = None
    # trials of killed jobs: with an RDB storage, a trial whose heartbeat (every
    # heartbeat_interval s, from the job and the waiting sweeper) stopped for grace_period s
    # ends FAIL when a sweep next runs on the study, and is retried up to max_retry times
    heartbeat_interval: int | None = 60
    grace_period: int | None = None  # default: twice heartbeat_interval
    max_retry: int = 0


@dataclass
class PublishedDefaultsSweeperConf(OptunaSweeperConf):
    """``hydra/sweeper=optuna``: the published plugin's defaults, so a config written for it
    means the same here (above all: it minimizes unless told otherwise, and prunes nothing)."""

    defaults: list[Any] = field(
        default_factory=lambda: ["_self_", {"sampler": "tpe"}, {"pruner": "none"}]
    )
    direction: Any = "minimize"
    n_jobs: int = 2
    max_failure_rate: float = 0.0


def published_plugin_installed() -> bool:
    return importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None


def register() -> None:
    """The sweeper as ``losslab_optuna``, and as ``optuna`` unless the published plugin,
    which owns that name, is installed."""
    cs = ConfigStore.instance()
    sweepers = {"losslab_optuna": OptunaSweeperConf}
    if not published_plugin_installed():
        sweepers["optuna"] = PublishedDefaultsSweeperConf
    for name, node in sweepers.items():
        cs.store(group="hydra/sweeper", name=name, node=node, provider=PROVIDER)
    for name, node in SAMPLERS.items():
        cs.store(group="hydra/sweeper/sampler", name=name, node=node, provider=PROVIDER)
    for name, node in PRUNERS.items():
        cs.store(group="hydra/sweeper/pruner", name=name, node=node, provider=PROVIDER)


register()
