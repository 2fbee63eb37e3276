"""Train a classifier on imbalanced data: python train.py [-m] [group=option] [key=value].

Kept thin so ``--help`` and ``--cfg job`` answer without importing TensorFlow.
"""

import hydra
from omegaconf import DictConfig

from losslab.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | tuple[float, ...]:
    from losslab.train import main as run

    return run(cfg)


if __name__ == "__main__":
    from losslab.cli import run_app

    run_app(main)
