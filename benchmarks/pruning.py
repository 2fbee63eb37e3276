"""Figure 2: the training epochs median pruning saves in a sweep, and what it costs in quality.

A seeded 24-trial TPE sweep over lr, dropout and class-weight ratio (``hparams_search=optuna``)
on MNIST 9 vs 4 (the real files in ../shared/data/mnist), run twice per seed: with the median
pruner and without. Epochs are counted from the study (one intermediate value per epoch
trained), so the figure does not depend on the machine's speed. Goal: pruning spends at most
half the epochs, and its best objective is within 0.01 of (or better than) the unpruned best.

    python benchmarks/pruning.py [--device cpu|gpu] [--repeats 3] [--trials 24] [--epochs 10]
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


# the median pruner may stop a trial after its first epoch, once 3 trials are done
MEDIAN = ["hydra.sweeper.pruner.n_startup_trials=3", "hydra.sweeper.pruner.n_warmup_steps=0"]


def sweep(folder: Path, seed: int, pruner: str, trials: int, epochs: int) -> tuple[int, float]:
    """Epochs trained and the best objective of one sweep."""
    import optuna

    from losslab.search.storage import open_storage

    name = f"seed{seed}-{pruner}"
    storage = f"sqlite:///{folder}/{name}.db"
    subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", "hparams_search=optuna",
         "data=mnist_9v4", f"data.source_dir={MNIST}", "data.val_fraction=0.3", "model=mlp",
         f"trainer.epochs={epochs}",
         "trainer.batch_size=64", "trainer.verbose=0", "tracking=none",
         f"hydra.sweeper.n_trials={trials}", f"hydra.sweeper.sampler.seed={seed}",
         f"hydra/sweeper/pruner={pruner}", f"hydra.sweeper.storage={storage}",
         f"hydra.sweeper.study_name={name}", f"hydra.sweep.dir={folder}/{name}",
         *(MEDIAN if pruner == "median" else [])],
        cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    study = optuna.load_study(study_name=name, storage=open_storage(storage))
    spent = sum(len(t.intermediate_values) for t in study.trials)
    return spent, study.best_value


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--epochs", type=int, default=10)
    args = p.parse_args()
    use_device(args.device)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    folder = Path(tempfile.mkdtemp(prefix="bench-pruning-"))
    rows = []
    for seed in range(args.repeats):
        pruned_epochs, pruned_best = sweep(folder, seed, "median", args.trials, args.epochs)
        full_epochs, full_best = sweep(folder, seed, "none", args.trials, args.epochs)
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
        f"batch 64, objective val_pr_auc; "
        f"median pruner with `{' '.join(MEDIAN)}`; "
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
