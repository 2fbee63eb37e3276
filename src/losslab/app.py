"""The Hydra application behind ``losslab train`` and ``python train.py``.

``config_path`` is relative to this module, so Hydra reads the config groups from the package
``losslab.conf`` (the checkout's top-level ``conf/``, mapped there by ``pyproject.toml``)
wherever losslab is installed; the job is named ``train`` in ``conf/hydra/default.yaml``,
whichever command starts it. Kept thin so ``--help`` and
``--cfg job`` answer without importing TensorFlow.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from losslab.composition import register

register()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | tuple[float, ...]:
    from losslab.job import main as run

    return run(cfg)


def run(args: list[str] | None = None) -> None:
    """Hydra's command line over ``args`` (default: this process's own), ``repeats=k``
    expanded (:mod:`losslab.repeats`); a user's error ends the process with one line and exit
    code 2 (:func:`losslab.cli.run_app`)."""
    from losslab.cli import run_app
    from losslab.repeats import expand

    given = sys.argv[1:] if args is None else list(args)

    def start() -> None:
        sys.argv = [sys.argv[0], *expand(given)]  # Hydra reads its arguments from sys.argv
        main()

    run_app(start)
