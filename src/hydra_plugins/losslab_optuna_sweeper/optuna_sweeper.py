"""The sweeper class Hydra discovers (``hydra/sweeper=losslab_optuna``).

Hydra imports every public module of ``hydra_plugins`` at each start, ``--help`` included, so
this one imports nothing heavy: Optuna is loaded by :mod:`._impl` once a sweep begins.
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OptunaSweeper(Sweeper):
    """See ``config.OptunaSweeperConf`` for the options."""

    def __init__(self, **options: Any) -> None:
        from hydra_plugins.losslab_optuna_sweeper._impl import OptunaSweeperImpl

        self.impl = OptunaSweeperImpl(**options)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.impl.sweep(arguments)

    @staticmethod
    def check_settings(sweeper: DictConfig, arguments: list[str], launcher: Any = None) -> Any:
        """Every ``hydra.sweeper`` setting and the search space, checked without running
        anything: losslab's preflight callback calls this before the sweep's parent run or
        folder exists, so a bad setting ends the command in one line. The search space (its
        ``distributions`` name what each trial varies). ``launcher``: ``hydra.launcher``, for
        the rules of worker mode."""
        from hydra_plugins.losslab_optuna_sweeper.checks import sweep_settings

        return sweep_settings(sweeper, arguments, launcher)
