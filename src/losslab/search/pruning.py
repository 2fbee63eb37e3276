"""The Keras pruning callback for a trial whose objective is its best epoch, not its last.

With ``trainer.early_stopping.restore_best_weights`` monitoring the objective, a trial returns
the value of its best epoch. optuna-integration's ``KerasPruningCallback`` reports each raw
epoch value, so the pruner would compare one noisy epoch of this trial with the raw epochs of
finished trials, while their objectives are their best. Reporting the best value so far (what
the trial would return if stopped now) keeps the pruner's curves and the objective the same
quantity; the rest (interval, pruning, the message) is optuna-integration's.
"""

from __future__ import annotations

import math
from typing import Any

from optuna import TrialPruned
from optuna_integration import KerasPruningCallback


class BestSoFarPruningCallback(KerasPruningCallback):
    """Report the running best of ``monitor`` (highest when ``maximize``, else lowest).

    ``best_so_far=False`` reports each raw epoch, as the stock callback does. With validation
    folds a trial trains one model after another: :meth:`start_fold` moves the reported steps
    on by the epochs of a fold, so fold ``k`` of every trial is compared at the same steps.
    The ``TrialPruned`` it raises carries the value reported last as ``objective``; the
    trial's MLflow run logs it as ``pruned_at_value``, and its message counts the epoch within
    the fold, as the epoch lines do.
    """

    def __init__(
        self, trial: Any, monitor: str, maximize: bool, best_so_far: bool = True, interval: int = 1
    ) -> None:
        super().__init__(trial, monitor, interval)
        self._maximize = maximize
        self._best_so_far = best_so_far
        self._best = math.nan
        self._offset = 0
        self._fold: int | None = None

    def start_fold(self, fold: int, epochs: int) -> None:
        self._offset = fold * epochs
        self._fold = fold
        self._best = math.nan

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = dict(logs or {})
        if self._best_so_far and self._monitor in logs:
            value = float(logs[self._monitor])
            if math.isnan(self._best):
                self._best = value
            elif math.isfinite(value):
                self._best = max(self._best, value) if self._maximize else min(self._best, value)
            logs[self._monitor] = self._best  # a NaN epoch keeps the best so far
        try:
            super().on_epoch_end(self._offset + epoch, logs)
        except TrialPruned:
            value = logs.get(self._monitor)  # what the trial reported last: its value
            # epochs counted as the epoch lines count them, within the fold
            where = f"epoch {epoch + 1}" + ("" if self._fold is None else f" of fold {self._fold}")
            err = TrialPruned(f"Trial was pruned at {where}.")
            err.objective = None if value is None else float(value)
            raise err from None
