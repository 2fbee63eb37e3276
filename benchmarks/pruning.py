"""Figure 2: the training epochs median pruning saves in a sweep, and what it costs in quality.

A seeded 24-trial TPE sweep over lr, dropout and class-weight ratio (``hparams_search=optuna``)
on MNIST 9 vs 4 (the real files in ../shared/data/mnist), run twice per seed: with the median
pruner and without. Each trial's objective is the val_pr_auc of its best epoch (the preset
restores it) and the pruner sees the best so far; with the last epoch's value instead, one
noisy epoch decided which trial was best and the gap was 0.023. Epochs are counted from the
study (one intermediate value per epoch trained), so the figure does not depend on the
machine's speed. Goal: pruning spends at most half the epochs, and its best objective is
within 0.01 of (or better than) the unpruned best.

    python benchmarks/pruning.py [--device cpu|gpu] [--repeats 5] [--trials 24] [--epochs 10]
                                 [--set KEY=VALUE ...]

The two sweeps of a seed run side by side, one TensorFlow thread each: the figure counts
epochs, not seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import command, machine, median, parser, publish, use_device  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "data" / "mnist"


# the median pruner may stop a trial after its first epoch, once 3 trials are done; waiting for
# 5 closed the gap on more seeds but spent 0.53 of the epochs (median of the same 5 seeds)
MEDIAN = ["hydra.sweeper.pruner.n_startup_trials=3", "hydra.sweeper.pruner.n_warmup_steps=0"]


def study(folder: Path, seed: int, pruner: str) -> tuple[str, str]:
    """Name and storage URL of one sweep's study; its log is ``<folder>/<name>.log``."""
    name = f"seed{seed}-{pruner}"
    return name, f"sqlite:///{folder}/{name}.db"


def start_sweep(
    folder: Path, seed: int, pruner: str, trials: int, epochs: int, extra: list[str]
) -> subprocess.Popen:
    name, storage = study(folder, seed, pruner)
    with (folder / f"{name}.log").open("w") as log:
        return subprocess.Popen(
            [
                sys.executable,
                str(REPO / "train.py"),
                "-m",
                "hparams_search=optuna",
                "data=mnist_9v4",
                f"data.source_dir={MNIST}",
                "data.val_fraction=0.3",
                "model=mlp",
                f"trainer.epochs={epochs}",
                "trainer.batch_size=64",
                "trainer.threads=1",
                "trainer.verbose=0",
                "tracking=none",
                f"hydra.sweeper.n_trials={trials}",
                f"hydra.sweeper.sampler.seed={seed}",
                f"hydra/sweeper/pruner={pruner}",
                f"hydra.sweeper.storage={storage}",
                f"hydra.sweeper.study_name={name}",
                f"hydra.sweep.dir={folder}/{name}",
                *(MEDIAN if pruner == "median" else []),
                *extra,
            ],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def result(folder: Path, seed: int, pruner: str) -> tuple[int, float]:
    """Epochs trained and the best objective of one finished sweep."""
    import optuna

    from losslab.search.storage import open_storage

    name, storage = study(folder, seed, pruner)
    finished = optuna.load_study(study_name=name, storage=open_storage(storage))
    spent = sum(len(t.intermediate_values) for t in finished.trials)
    return spent, finished.best_value


def main() -> None:
    p = parser(__doc__.splitlines()[0], repeats=5)
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Hydra override for both sweeps",
    )
    args = p.parse_args()
    use_device(args.device)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    folder = Path(tempfile.mkdtemp(prefix="bench-pruning-"))
    rows = []
    for seed in range(args.repeats):
        jobs = {
            pruner: start_sweep(folder, seed, pruner, args.trials, args.epochs, args.set)
            for pruner in ("median", "none")
        }
        for pruner, job in jobs.items():
            if job.wait():
                log = folder / f"{study(folder, seed, pruner)[0]}.log"
                sys.exit(f"{pruner} sweep, seed {seed} failed:\n{log.read_text()[-3000:]}")
        pruned_epochs, pruned_best = result(folder, seed, "median")
        full_epochs, full_best = result(folder, seed, "none")
        rows.append((seed, full_epochs, pruned_epochs, full_best, pruned_best))
        print(rows[-1], flush=True)
    ratios = [r[2] / r[1] for r in rows]
    gaps = [r[3] - r[4] for r in rows]
    lines = [
        "## 2. Pruning (epochs trained and best objective, median pruner vs none)",
        "",
        f"Machine: {machine(args.device)}. Command: `{command()}`. {args.trials}-trial seeded TPE "
        f"sweeps (`hparams_search=optuna`: lr, dropout, class-weight ratio) on MNIST 9 vs 4 "
        f"(real files), 30% of the 4s held out for validation, {args.epochs} epochs per trial, "
        f"batch 64, objective val_pr_auc of each trial's best epoch; "
        f"median pruner with `{' '.join(MEDIAN)}`; "
        f"{' '.join(args.set)}{'; ' if args.set else ''}"
        f"{args.repeats} seeds, median reported. Goal: epochs ratio at most 0.5, best objective "
        "at most 0.01 below the unpruned best.",
        "",
        "| sampler seed | epochs, no pruning | epochs, median pruner | ratio | best, no pruning "
        "| best, pruned | gap |",
        "|---|---|---|---|---|---|---|",
    ]
    for (seed, full, pruned, full_best, pruned_best), ratio, gap in zip(
        rows, ratios, gaps, strict=True
    ):
        lines.append(
            f"| {seed} | {full} | {pruned} | {ratio:.3f} | {full_best:.4f} | {pruned_best:.4f} "
            f"| {gap:+.4f} |"
        )
    lines.append(f"| **median** | | | **{median(ratios):.3f}** | | | **{median(gaps):+.4f}** |")
    publish("pruning", lines, args)


if __name__ == "__main__":
    main()
