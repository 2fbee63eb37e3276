"""Figure 6: what tracking costs a whole job, not only ``fit``.

Rows, each a fresh ``python train.py`` process on the default data (20 epochs), interleaved
repetition by repetition: ``tracking=none`` (1.0); ``tracking.log_model=false``; the default
(SQLite store, every batch and epoch metric, params, config, plots, evaluation, model with
signature and input example); the same against a ``mlflow server`` on 127.0.0.1; and the
default job started through ``losslab.app.run`` in a process that keeps Python's last garbage
collections (what ``train.py`` did before :mod:`losslab.process`). Then where the tracked
job's time goes: one more default run under ``cProfile``, its time split by the steps of
``losslab.train`` (cumulative seconds of each step's function; cProfile slows Python code
down, so these are shares, not timings), and MLflow's SQL store loading within the run start.

    python benchmarks/end_to_end.py [--repeats 5]
"""

from __future__ import annotations

import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import command, machine, median, parser, publish, use_device  # noqa: E402

TRAIN = str(Path(__file__).resolve().parents[1] / "train.py")
# step of a tracked job -> (file suffix, function) whose cumulative time it is
STEPS = {
    "store checks before the data loads": ("losslab/train.py", "check_store"),
    "Keras and TensorFlow start": ("losslab/backend.py", "start"),
    "data": ("losslab/train.py", "prepare"),
    "run start (store ready, dead-run check, create)": ("losslab/train.py", "_start_run"),
    "params and config artifacts": ("losslab/train.py", "_log_start"),
    "fit (model build, trace, epochs)": ("losslab/train.py", "fit_fold"),
    "evaluation on validation and test": ("losslab/train.py", "outcome"),
    "plots, curves, summaries logged": ("losslab/train.py", "_log_evaluation"),
    "model logged": ("losslab/tracking/run.py", "log_model"),
    "run closed (flush, status)": ("losslab/tracking/run.py", "__exit__"),
}
# part of the run start: MLflow's SQLAlchemy models and Alembic, imported with the SQLite store
STORE_IMPORT = ("mlflow/store/tracking/sqlalchemy_store.py", "<module>")
# the default job in a process that collects garbage at exit, as before losslab.process
COLLECTING = ["-c", "import sys; from losslab.app import run; sys.argv[0] = 'train.py'; run()"]


def job_time(cwd: Path, *args: str) -> float:
    """Seconds of ``python train.py ARGS`` (or of ``python ARGS`` when they start with -c)."""
    command = [*args] if args[:1] == ("-c",) else [TRAIN, *args]
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *command], cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - t0


def breakdown(cwd: Path) -> tuple[float, dict[str, float]]:
    """The whole process and each step, in seconds, from one default run under cProfile."""
    out = cwd / "job.prof"
    subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(out), TRAIN, "hydra.run.dir=profiled"],
        cwd=cwd,
        check=True,
        capture_output=True,
    )
    stats = pstats.Stats(str(out)).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    total = max(ct for _, _, _, ct, _ in stats.values())
    steps = {}
    for step, (suffix, name) in {**STEPS, "store import": STORE_IMPORT}.items():
        found = [v[3] for (f, _, n), v in stats.items() if f.endswith(suffix) and n == name]
        steps[step] = max(found, default=0.0)
    return total, steps


def main() -> None:
    args = parser(__doc__.splitlines()[0], repeats=5).parse_args()
    use_device(args.device)
    from tests.conftest import MlflowServer

    folder = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    (folder / "server").mkdir()
    server = MlflowServer(folder / "server")
    url = server.start()
    rows = {
        "tracking=none": ["tracking=none"],
        "tracking.log_model=false (SQLite)": ["tracking.log_model=false"],
        "full tracking, SQLite (default)": [],
        "full tracking, mlflow server on 127.0.0.1": ["tracking=server", f"tracking.uri={url}"],
        "full tracking, SQLite, exit with Python's last collections": COLLECTING,
    }
    times: dict[str, list[float]] = {name: [] for name in rows}
    try:
        job_time(folder, "tracking=none")  # warm the file cache
        for _ in range(args.repeats):
            for name, overrides in rows.items():
                times[name].append(job_time(folder, *overrides))
            print({k: round(v[-1], 2) for k, v in times.items()}, flush=True)
    finally:
        server.stop()
    base = median(times["tracking=none"])
    total, steps = breakdown(folder)
    store_import = steps.pop("store import")
    lines = [
        "## 6. Tracking end to end (one whole job)",
        "",
        f"Machine: {machine(args.device)}. Command: `{command()}`. Each row a fresh `python "
        f"train.py` on the default data (20 epochs), rows interleaved, median of {args.repeats}. "
        "Goal: full tracking at most 1.15x `tracking=none` (SQLite), 1.25x (server).",
        "",
        "| job | seconds | vs tracking=none |",
        "|---|---|---|",
        *[f"| {n} | {median(t):.2f} | {median(t) / base:.2f}x |" for n, t in times.items()],
        "",
        f"Where a tracked job's time goes (one default run under cProfile, {total:.1f} s in all; "
        "the rest is imports and Hydra before the first step):",
        "",
        "| step | seconds (profiled) | share |",
        "|---|---|---|",
        *[f"| {s} | {v:.2f} | {v / total:.0%} |" for s, v in steps.items()],
        f"| imports and Hydra before training starts, the rest | "
        f"{total - sum(steps.values()):.2f} | {(total - sum(steps.values())) / total:.0%} |",
        "",
        f"Of the run start, {store_import:.2f} s (profiled) is loading MLflow's SQL store "
        "(its SQLAlchemy models and Alembic), which an untracked job never imports.",
    ]
    publish("end-to-end", lines, args)


if __name__ == "__main__":
    main()
