"""The ``mlflow run`` entry points: ``python -m losslab.mlproject [-m] {overrides}``.

MLflow quotes each ``-P`` parameter as one shell word, so ``-P overrides="loss=focal
trainer.epochs=3"`` would reach ``train.py`` as a single argument, which Hydra cannot parse.
Here every argument is split as a shell splits a command line (quotes group words; nothing is
expanded) and ``train.py`` runs with the words, in the project folder ``mlflow run`` uses.
"""

from __future__ import annotations

import runpy
import shlex
import sys

TRAIN_PY = "train.py"


def words(args: list[str]) -> list[str]:
    """``["-m", "loss=focal,bce trainer.epochs=3"]`` as ``train.py`` needs them."""
    return [word for arg in args for word in shlex.split(arg)]


def main(argv: list[str] | None = None) -> None:
    sys.argv = [TRAIN_PY, *words(sys.argv[1:] if argv is None else argv)]
    runpy.run_path(TRAIN_PY, run_name="__main__")


if __name__ == "__main__":
    main()
