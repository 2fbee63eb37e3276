"""Figure 3: two sweep workers sharing one Optuna storage against one worker.

The same fixed number of trials of ``hparams_search=optuna`` (no pruning, so every trial costs
the same) on MNIST 9 vs 4 (real files), either by one worker using every core, or by two
workers started together on one SQLite study, one TensorFlow thread each
(``trainer.threads=1``) so they do not fight over the two cores. Both record to one MLflow
SQLite store. Goal: two workers at least 1.6x faster.

    python benchmarks/parallel_sweeps.py [--device cpu|gpu] [--repeats 3] [--trials 8]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import command, machine, median, parser, publish, use_device  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "data" / "mnist"


def run_workers(folder: Path, name: str, workers: int, threads: int, trials: int) -> float:
    """Wall seconds until every worker of one study has exited."""
    storage = f"sqlite:///{folder}/{name}.db"
    commands = [
        [
            sys.executable,
            str(REPO / "train.py"),
            "-m",
            "hparams_search=optuna",
            "data=mnist_9v4",
            f"data.source_dir={MNIST}",
            "model=mlp",
            "trainer.epochs=4",
            "trainer.batch_size=64",
            "trainer.verbose=0",
            f"trainer.threads={threads}",
            "hydra/sweeper/pruner=none",
            f"hydra.sweeper.n_trials={trials}",
            f"hydra.sweeper.storage={storage}",
            f"hydra.sweeper.study_name={name}",
            f"hydra.sweeper.sampler.seed={i}",
            f"hydra.sweep.dir={folder}/{name}/worker{i}",
        ]
        for i in range(workers)
    ]
    t0 = time.perf_counter()
    logs = [folder / f"{name}-worker{i}.log" for i in range(workers)]
    procs = [
        subprocess.Popen(c, cwd=folder, stdout=log.open("w"), stderr=subprocess.STDOUT)
        for c, log in zip(commands, logs, strict=True)
    ]
    codes = [p.wait() for p in procs]
    for code, log in zip(codes, logs, strict=True):
        if code != 0:
            raise RuntimeError(f"{log.name} failed:\n{log.read_text()[-3000:]}")
    elapsed = time.perf_counter() - t0
    import optuna

    done = optuna.load_study(study_name=name, storage=storage).trials
    assert len(done) == trials and all(t.state.name == "COMPLETE" for t in done), name
    return elapsed


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=8)
    args = p.parse_args()
    use_device(args.device)
    folder = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    one, two = [], []
    for rep in range(args.repeats):
        order = [(1, 0), (2, 1)] if rep % 2 == 0 else [(2, 1), (1, 0)]
        for workers, threads in order:
            seconds = run_workers(folder, f"r{rep}-w{workers}", workers, threads, args.trials)
            (one if workers == 1 else two).append(seconds)
        print(rep, round(one[-1], 1), round(two[-1], 1), flush=True)
    speedups = [a / b for a, b in zip(one, two, strict=True)]
    lines = [
        "## 3. Parallel sweeps (two workers, one storage)",
        "",
        f"Machine: {machine(args.device)}. Command: `{command()}`. {args.trials} trials of "
        "`hparams_search=optuna` (MNIST 9 vs 4, `model=mlp`, 4 epochs, no pruning) per study, "
        f"SQLite study and MLflow store; median of {args.repeats} repetitions (order "
        "alternated). Goal: speed-up at least 1.6.",
        "",
        "| setup | seconds |",
        "|---|---|",
        f"| one worker, all cores (`trainer.threads=0`) | {median(one):.1f} |",
        f"| two workers, `trainer.threads=1` each | {median(two):.1f} |",
        f"| **speed-up** | **{median(speedups):.2f}** |",
    ]
    publish("parallel-sweeps", lines, args)


if __name__ == "__main__":
    main()
