"""Hydra callback: what a command can be refused for before any run, parent or data exists.

Hydra calls ``on_run_start`` / ``on_multirun_start`` before it creates the output folder or
launches a job; an error found later would leave a parent run RUNNING (a sweep override the
sweeper cannot read) or print a traceback (an output folder that cannot be created). A sweep
command claims its folder here too (:mod:`losslab.sweep_lock`). Errors end the command with
one line and exit code 2 (:mod:`losslab.cli`): Hydra only warns about other exceptions raised
in a callback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from losslab import sweep_lock
from losslab.cli import single_run_errors
from losslab.config import ConfigError


def check_folder(key: str, folder: str) -> None:
    """``folder`` exists or can be created (Hydra creates it after the callbacks ran)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"{key}={folder}: cannot create it ({err.strerror}); give a writable folder"
        ) from None


def check_sweep_overrides(config: DictConfig) -> None:
    """Sweep overrides and settings the configured sweeper can run with: an Optuna sweep's
    search space (empty intervals, ranges without values), direction, storage, sampler and
    pruner; no ``interval()`` for Hydra's basic sweeper."""
    from losslab.search import study

    overrides = [str(o) for o in OmegaConf.to_container(config.hydra.overrides.task)]
    if study.is_optuna_sweep(config):
        from hydra.utils import get_class

        # the sweeper's own checks, found through its _target_: losslab imports no plugin
        check_settings = get_class(config.hydra.sweeper._target_).check_settings
        try:
            space = check_settings(config.hydra.sweeper, overrides, config.hydra.launcher)
        except ValueError as err:  # SettingsError, SearchSpaceError: a bad hydra.sweeper key
            raise ConfigError(str(err)) from None
        study.preflight(config)
        check_folds(config, list(space.distributions))
        return
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_sweep_override() and isinstance(override.value(), IntervalSweep):
            raise ConfigError(
                f"{override.input_line}: interval() is a search range; Hydra's basic sweeper "
                "takes lists (a,b,c), range() and choice(); search with hparams_search=optuna"
            )


def check_folds(config: DictConfig, swept: list[str]) -> None:
    """Every trial's folds hold the validation floor, and under ``fpr_bound`` enough of the
    majority to certify the rate, when no trial changes the data or the rule."""
    from losslab import config as config_lib
    from losslab import fold_floor

    if config.get("data") is None or fold_floor.varies_the_data(swept):
        return
    bounded = str(config.get("evaluation", {}).get("threshold")) == "fpr_bound"
    bounded = bounded and not any(key.startswith("evaluation") for key in swept)
    if int(config.data.get("folds") or 1) <= 1 and not bounded:
        return
    job = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    job.paths.output_dir = str(config.hydra.sweep.dir)  # no job folder exists yet
    try:
        conf = config_lib.to_objects(job)
    except ConfigError:  # a key only the trials give (loss._target_=choice(...)): theirs to judge
        return
    fold_floor.check(conf)


def check_launcher(config: DictConfig) -> None:
    """The launcher's plugin is installed: Hydra would load it only once the sweep's parent
    run is open."""
    from losslab.extras import check_launcher as check

    check(config.hydra.runtime.choices.get("hydra/launcher"), config.hydra.launcher._target_)


def check_store(config: DictConfig) -> None:
    """The tracking store answers, unless tracking is off or may start offline."""
    tracking = config.get("tracking")
    if not tracking or not tracking.enabled or tracking.if_unreachable == "offline":
        return
    from losslab.tracking.reachable import check_usable

    check_usable(tracking.uri, tracking.artifact_location, tracking.if_unreachable)


class Preflight(Callback):
    """The checks above, each before Hydra acts on what it checks."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not HydraConfig.initialized():  # the folder's ${hydra:...} needs it
            HydraConfig.instance().set_config(config)
        with single_run_errors(True):
            check_launcher(config)
            check_folder("hydra.run.dir", config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not HydraConfig.initialized():
            HydraConfig.instance().set_config(config)
        with single_run_errors(True):  # the folder last: a refused sweep leaves none behind
            check_launcher(config)
            check_sweep_overrides(config)
            check_store(config)
            check_folder("hydra.sweep.dir", config.hydra.sweep.dir)
            sweep_lock.claim(config.hydra.sweep.dir)  # one command per folder

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_lock.release(config.hydra.sweep.dir)
