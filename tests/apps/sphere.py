"""A Hydra app whose job is a formula, not a model: the sweeper's tests run dozens of trials
through it in seconds. ``objectives: 2`` returns two values (a multi-objective study);
``fail_when_x_above`` raises for large ``x``; ``prune_when_x_above`` raises Optuna's
``TrialPruned`` as a pruned job does."""

from __future__ import annotations

import hydra
import optuna
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="sphere")
def main(cfg: DictConfig) -> float | tuple[float, float]:
    x, y = float(cfg.x), float(cfg.y)
    if cfg.fail_when_x_above is not None and x > cfg.fail_when_x_above:
        raise ValueError(f"x={x} is above {cfg.fail_when_x_above}")
    if cfg.prune_when_x_above is not None and x > cfg.prune_when_x_above:
        raise optuna.TrialPruned(f"x={x}")
    first = x**2 + y**2 + float(cfg.z)
    if cfg.objectives == 2:
        return first, (x - 1) ** 2 + y**2
    return first


if __name__ == "__main__":
    main()
