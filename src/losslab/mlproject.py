"""The ``mlflow run`` entry points: ``python -m losslab.mlproject [-m] {overrides}``.

MLflow quotes each ``-P`` parameter as one shell word, so ``-P overrides="loss=focal
trainer.epochs=3"`` would reach Hydra as a single argument, which it cannot parse. Here every
argument is split as a shell splits a command line (quotes group words; nothing is expanded)
and the app (:mod:`losslab.app`, what ``python train.py`` runs) starts with the words, in the
project folder ``mlflow run`` uses.
"""

from __future__ import annotations

import shlex
import sys


def words(args: list[str]) -> list[str]:
    """``["-m", "loss=focal,bce trainer.epochs=3"]`` as Hydra needs them."""
    return [word for arg in args for word in shlex.split(arg)]


def main(argv: list[str] | None = None) -> None:
    from losslab.app import run

    run(words(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
