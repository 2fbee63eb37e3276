"""The sweeper's settings, checked without running anything.

The same checks run twice: from losslab's preflight callback, before the sweep's parent run or
folder exists (so a bad setting ends the command in one line, with nothing left RUNNING), and
when Hydra builds the sweeper (for apps without that callback).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hydra_plugins.losslab_optuna_sweeper import search_space
from losslab.search.settings import SettingsError, directions

__all__ = ["SettingsError", "directions", "sweep_settings"]


def counts(n_trials: int, n_jobs: int, max_failure_rate: float, heartbeat: int | None) -> None:
    if n_trials < 1 or n_jobs < 1:
        raise SettingsError(
            f"hydra.sweeper.n_trials={n_trials}, n_jobs={n_jobs}: both must be >= 1"
        )
    if not 0.0 <= max_failure_rate <= 1.0:
        raise SettingsError(f"hydra.sweeper.max_failure_rate={max_failure_rate}: must be in [0, 1]")
    if heartbeat is not None and heartbeat < 1:
        raise SettingsError(
            f"hydra.sweeper.heartbeat_interval={heartbeat}: must be >= 1 s, or null for none"
        )


def trials_per_run(value: int | None) -> None:
    if value is not None and value < 1:
        raise SettingsError(
            f"hydra.sweeper.trials_per_run={value}: must be >= 1, or null for no limit"
        )


def workers(value: int, detach: bool = False, per_run: int | None = None) -> None:
    if value < 0:
        raise SettingsError(
            f"hydra.sweeper.workers={value}: must be >= 1, or 0 for batch mode (n_jobs at once)"
        )
    if value and per_run is not None:
        raise SettingsError(
            f"hydra.sweeper.trials_per_run={per_run}: a cap of batch mode; workers run until "
            "the study has n_trials (set one of them)"
        )
    if detach and not value:
        raise SettingsError(
            "hydra.sweeper.detach=true: a sweep returns at once only with workers; "
            "set hydra.sweeper.workers=N (losslab sweep --workers N --detach)"
        )


def worker_launcher(sweeper: Mapping[str, Any], launcher: Mapping[str, Any] | None) -> None:
    """Workers are submitit jobs (``hydra/launcher=submitit_local`` or a Slurm launcher);
    on Slurm they share the study across nodes, which a file storage cannot do safely."""
    count = sweeper.get("workers") or 0
    if not count or launcher is None:
        return
    from hydra.utils import get_class

    executor = getattr(get_class(launcher.get("_target_", "")), "_EXECUTOR", None)
    if executor not in ("local", "slurm"):
        raise SettingsError(
            f"hydra.sweeper.workers={count}: workers are submitit jobs; choose "
            "hydra/launcher=submitit_local, or a Slurm launcher (submitit_slurm, slurm_gpu)"
        )
    if executor == "slurm":
        from losslab.search.storage import check_shared

        try:
            check_shared(sweeper.get("storage"))
        except ValueError as err:
            raise SettingsError(f"hydra.sweeper.{err}") from None


def storage(url: str | None) -> None:
    """A URL that names a storage whose driver is installed (the database may be down)."""
    if url is None:
        return
    from losslab.search.storage import JOURNAL_PREFIX, check_url

    try:
        check_url(url)
    except ValueError as err:
        raise SettingsError(f"hydra.sweeper.{err}") from None
    if url.startswith(JOURNAL_PREFIX):
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(url).get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError, ValueError) as err:
        raise SettingsError(f"hydra.sweeper.storage: {err}") from None
    except ImportError as err:
        from losslab.extras import missing_driver

        raise SettingsError(f"hydra.sweeper.storage: {missing_driver(url, err)}") from None


def params(sweeper: Mapping[str, Any]) -> dict[str, str]:
    """The search space as ``params`` lines, the deprecated ``search_space`` node included."""
    values = sweeper.get("params")
    lines = dict(OmegaConf.to_container(values) if OmegaConf.is_config(values) else values or {})
    old = sweeper.get("search_space")
    if old:
        warnings.warn(  # Python shows it once per place it is raised from
            "hydra.sweeper.search_space is deprecated (as in hydra-optuna-sweeper 1.2): "
            "write hydra.sweeper.params, e.g. lr: tag(log, interval(1e-5, 1e-1))",
            FutureWarning,
            stacklevel=2,
        )
        for key, node in old.items():
            lines.setdefault(str(key), search_space.from_distribution_config(str(key), node))
    return lines


def sweep_settings(
    sweeper: DictConfig, arguments: list[str], launcher: Mapping[str, Any] | None = None
) -> search_space.SearchSpace:
    """Every setting above, and the search space with the samplers and pruner built on it;
    with ``launcher`` (``hydra.launcher``), whether workers can run on it."""
    from hydra_plugins.losslab_optuna_sweeper import samplers

    directions(sweeper.get("direction", "maximize"))
    counts(
        sweeper.get("n_trials", 20),
        sweeper.get("n_jobs", 1),
        sweeper.get("max_failure_rate", 0.5),
        sweeper.get("heartbeat_interval"),
    )
    trials_per_run(sweeper.get("trials_per_run"))
    workers(sweeper.get("workers") or 0, bool(sweeper.get("detach")), sweeper.get("trials_per_run"))
    storage(sweeper.get("storage"))
    worker_launcher(sweeper, launcher)
    space = search_space.parse(params(sweeper), arguments)
    for kind, build in (
        ("sampler", lambda node: samplers.build_sampler(node, space.distributions, 0)),
        ("pruner", samplers.build_pruner),
    ):
        node = sweeper.get(kind)
        _check_node(kind, node)
        try:
            build(node)
        except Exception as err:  # any constructor error of Optuna's is a bad setting here
            cause = err.__cause__ or err
            raise SettingsError(f"hydra.sweeper.{kind}: {type(cause).__name__}: {cause}") from None
    _check_gp_needs(sweeper.get("sampler"))
    _check_brute_force(sweeper.get("sampler"), space)
    _check_custom_search_space(sweeper.get("custom_search_space"))
    return space


def _check_brute_force(node: Any, space: search_space.SearchSpace) -> None:
    """Optuna's BruteForceSampler fails each trial on a continuous interval: refused here."""
    if node is None or not str(node.get("_target_", "")).endswith("BruteForceSampler"):
        return
    from optuna.distributions import FloatDistribution

    for key, dist in space.distributions.items():
        if isinstance(dist, FloatDistribution) and dist.step is None:
            raise SettingsError(
                f"hydra/sweeper/sampler=bruteforce: {key} is a continuous interval"
                f"({dist.low}, {dist.high}); give choice(..) or range(..)"
            )


def _check_custom_search_space(path: str | None) -> None:
    if not path:
        return
    from hydra.utils import get_method

    try:
        get_method(path)
    except Exception as err:
        cause = err.__cause__ or err
        raise SettingsError(
            f"hydra.sweeper.custom_search_space={path}: not a function "
            f"({type(cause).__name__}: {cause})"
        ) from None


def _check_gp_needs(node: Any) -> None:
    """Optuna's GPSampler imports PyTorch only once its startup trials are done: a sweep
    would fail there, hours in, for want of a package."""
    if node is None or not str(node.get("_target_", "")).endswith("GPSampler"):
        return
    from losslab.extras import installed

    if not (installed("torch") and installed("scipy")):
        raise SettingsError(
            "hydra/sweeper/sampler=gp: Optuna's GPSampler needs PyTorch and SciPy; "
            "pip install torch scipy"
        )


def _check_node(kind: str, node: Any) -> None:
    if node is not None and not (isinstance(node, (DictConfig, dict)) and "_target_" in node):
        raise SettingsError(
            f"hydra.sweeper.{kind}={node!r} is not a {kind}: choose one with "
            f"hydra/sweeper/{kind}=<name>, or give a node with a _target_ class"
        )
