"""The ``losslab`` command: one name for what the project runs, wherever it is installed.

Each subcommand hands the rest of the command line on untouched (Hydra reads ``train``'s
arguments as ``python train.py``'s) and imports what it needs only once chosen, so
``losslab --help`` and ``losslab train --cfg job`` answer without TensorFlow, MLflow or Optuna.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

USAGE = """\
usage: losslab COMMAND [ARGS...]

Keras classifiers on imbalanced data: Hydra composes the experiment, Optuna searches it,
MLflow records it (into ./mlflow.db of the folder the command starts in, by default).

commands:
  train    one run, or a multirun with -m: losslab train [-m] [group=option] [key=value]
           (python train.py's command line; --help lists the config groups, --cfg job
           prints the composed config)
  sweep    an Optuna search: losslab train -m hparams_search=unattended [overrides], with
           the CNN for image data and the folds the minority count allows; --workers N:
           N jobs that each pull the next trial (hydra/launcher=submitit_local by default);
           --detach: return once they are submitted; sweep status STUDY: its progress
  study    which remedy rescues the minority class: every remedy, repeated, compared with
           intervals: losslab study data=... [remedies=none,focal,...] [repeats=5]
  compare  the runs of a study side by side: --experiment NAME or --parent-run ID
  replay   write a spilled run into MLflow once its store is back: FOLDER

losslab COMMAND --help tells more about one command; losslab --version prints the version.
"""


def train(args: Sequence[str]) -> int:
    from losslab.app import run

    run(list(args))
    return 0


def sweep(args: Sequence[str]) -> int:
    """``hparams_search=unattended`` and the model and folds the data asks for
    (:mod:`losslab.unattended`) first, so a preset or value given in ``args`` wins."""
    from losslab.repeats import HYDRA_MODES
    from losslab.unattended import picks

    if args[:1] == ["status"]:
        from losslab.search.status import main

        return main(list(args[1:]))
    args = worker_options(list(args))
    mode = [] if any(a.split("=")[0] in HYDRA_MODES for a in args) else ["-m"]
    chosen = picks(args)
    if chosen and mode:
        print(f"losslab sweep: {' '.join(chosen)} (from the data; give them to choose otherwise)")
    return train([*mode, "hparams_search=unattended", *chosen, *args])


def worker_options(args: list[str]) -> list[str]:
    """``--workers N [--detach]`` as ``hydra.sweeper.workers=N`` (``detach=true``), on
    submitit's local processes unless a ``hydra/launcher`` is given; a value that is not a
    count ends the command (exit 2)."""
    flag = next((a for a in args if a == "--workers" or a.startswith("--workers=")), None)
    if flag is None and "--detach" in args:
        print("error: --detach: a sweep returns at once only with --workers N", file=sys.stderr)
        raise SystemExit(2)
    if flag is None:
        return args
    at = args.index(flag)
    if "=" in flag:
        value, rest = flag.split("=", 1)[1], args[:at] + args[at + 1 :]
    else:
        value, rest = " ".join(args[at + 1 : at + 2]), args[:at] + args[at + 2 :]
    if not value.isdigit() or int(value) < 1:
        print(f"error: --workers={value}: give a number of workers >= 1", file=sys.stderr)
        raise SystemExit(2)
    launcher = any(a.startswith(("hydra/launcher=", "+hydra/launcher=")) for a in rest)
    detach = ["hydra.sweeper.detach=true"] if "--detach" in rest else []
    return [
        *([] if launcher else ["hydra/launcher=submitit_local"]),
        f"hydra.sweeper.workers={value}",
        *detach,
        *[a for a in rest if a != "--detach"],
    ]


def study(args: Sequence[str]) -> int:
    from losslab.study_cli import main

    return main(list(args))


def compare(args: Sequence[str]) -> int:
    from losslab.compare_cli import main

    return main(list(args), prog="losslab compare")


def replay(args: Sequence[str]) -> int:
    from losslab.tracking.replay import main

    return main(list(args), prog="losslab replay")


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "train": train,
    "sweep": sweep,
    "study": study,
    "compare": compare,
    "replay": replay,
}


def _usage_error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def entry() -> int:
    """The console script: :func:`main` in a process that ends with it."""
    from losslab.process import then_exit

    return then_exit(main)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the subcommand ``argv`` names; exit code 2 for a missing or unknown one."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        return _usage_error(f"losslab needs a command: {', '.join(COMMANDS)} (losslab --help)")
    name, rest = args[0], args[1:]
    if name in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    if name == "--version":
        from losslab import __version__

        print(f"losslab {__version__}")
        return 0
    if name not in COMMANDS:
        allowed = ", ".join(COMMANDS)
        return _usage_error(f"losslab {name}: no such command; use one of {allowed}")
    return COMMANDS[name](rest)
