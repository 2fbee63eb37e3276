"""Figure 7: what tracking costs a sweep of short trials.

Two 24-trial ``-m hparams_search=optuna`` sweeps on the default data, no pruning, the same
trials (a seeded random sampler), each in a fresh folder: with ``tracking=none`` and with full
tracking (SQLite store, every batch and epoch metric, plots, model). The figure is trials per
minute of the tracked sweep relative to the untracked one, and the tracked sweep's extra
seconds per trial; repetitions are interleaved.

    python benchmarks/sweep_overhead.py [--repeats 2] [--trials 24]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import command, machine, median, parser, publish, use_device  # noqa: E402

TRAIN = str(Path(__file__).resolve().parents[1] / "train.py")


def sweep_minutes(folder: Path, trials: int, *overrides: str) -> float:
    """Wall minutes of one sweep of ``trials`` trials started in the empty ``folder``."""
    folder.mkdir(parents=True)
    cmd = [
        sys.executable,
        TRAIN,
        "-m",
        "hparams_search=optuna",
        "hydra/sweeper/pruner=none",
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=0",
        f"hydra.sweeper.n_trials={trials}",
        *overrides,
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=folder, check=True, capture_output=True)
    return (time.perf_counter() - t0) / 60


def main() -> None:
    p = parser(__doc__.splitlines()[0], repeats=2)
    p.add_argument("--trials", type=int, default=24)
    args = p.parse_args()
    use_device(args.device)
    root = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    rows = {"tracking=none": ["tracking=none"], "full tracking, SQLite (default)": []}
    minutes: dict[str, list[float]] = {name: [] for name in rows}
    for i in range(args.repeats):
        for j, (name, overrides) in enumerate(rows.items()):
            minutes[name].append(sweep_minutes(root / f"{i}-{j}", args.trials, *overrides))
        print({k: round(v[-1], 2) for k, v in minutes.items()}, flush=True)
    base, tracked = (median(minutes[name]) for name in rows)
    per_trial = (tracked - base) * 60 / args.trials
    lines = [
        "## 7. Tracking in a sweep of short trials",
        "",
        f"Machine: {machine(args.device)}. Command: `{command()}`. {args.trials} trials of "
        "`python train.py -m hparams_search=optuna` on the default data (20 epochs, no pruning, "
        f"a seeded random sampler, so both sweeps run the same trials), median of "
        f"{args.repeats}. Goal: at least 0.85x the trials per minute of `tracking=none`.",
        "",
        "| sweep | minutes | trials per minute | vs tracking=none |",
        "|---|---|---|---|",
        *[
            f"| {name} | {median(m):.2f} | {args.trials / median(m):.2f} "
            f"| {base / median(m):.2f}x |"
            for name, m in minutes.items()
        ],
        "",
        f"Tracking adds {per_trial:.2f} s per trial (the difference of the sweeps' wall times "
        "over the trials: the run's records before and after `fit`, and the writer during it).",
    ]
    publish("sweep-overhead", lines, args)


if __name__ == "__main__":
    main()
