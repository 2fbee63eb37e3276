"""Figure 4: how fast ``train.py`` answers, and how long until the first training batch.

``python train.py --help`` and ``python train.py --cfg job`` must answer in under 1.5 s: they
import neither TensorFlow nor MLflow. The default run's time from process start to its first
training batch (the moment losslab logs "first batch") is reported alongside.

    python benchmarks/startup.py [--device cpu|gpu] [--repeats 5]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import command, machine, median, parser, publish, use_device  # noqa: E402

TRAIN = str(Path(__file__).resolve().parents[1] / "train.py")


def answer_time(*args: str, cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, TRAIN, *args], cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - t0


def first_batch_time(cwd: Path) -> float:
    """Seconds from starting ``python train.py`` to its "first batch" log line."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, TRAIN],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    seen = None
    for line in proc.stdout:
        if seen is None and "first batch after" in line:
            seen = time.perf_counter() - t0
    proc.wait()
    if proc.returncode != 0 or seen is None:
        raise RuntimeError("python train.py failed or logged no first batch")
    return seen


# phase of the default run -> the function of losslab whose return ends it
PHASES = {
    "imports, Hydra, config": None,  # until losslab.train.train is called
    "store checks": ("losslab.train", "check_store"),
    "Keras and TensorFlow start": ("losslab.backend", "start"),
    "data": ("losslab.train", "prepare"),
    "run start (store ready, dead-run check, create)": ("losslab.train", "_start_run"),
    "params and config artifacts": ("losslab.train", "_log_start"),
    "model build and compile": ("losslab.models", "build"),
    "first trace and first batch": None,  # until the first on_train_batch_end
}


def phases_driver(out: str) -> None:
    """Run ``train.py`` in this process with each phase's end time-stamped into ``out``."""
    import contextlib
    import functools
    import importlib
    import json
    import runpy

    marks: dict[str, float] = {}

    def stamp(name: str, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            finally:
                marks.setdefault(name, time.time())

        return wrapper

    import losslab.train

    def patch(names) -> None:
        for name in names:
            module, function = PHASES[name]
            module = importlib.import_module(module)
            setattr(module, function, stamp(name, getattr(module, function)))

    # losslab.models imports Keras: patched once the run has started Keras itself
    later = ["model build and compile"]
    patch(n for n, where in PHASES.items() if where is not None and n not in later)
    train, fit_fold = losslab.train.train, losslab.train.fit_fold

    def train_stamped(*args, **kwargs):
        marks.setdefault("imports, Hydra, config", time.time())
        return train(*args, **kwargs)

    def fit_fold_stamped(setup, k, tracked, extra):
        import keras

        if not later_patched:
            patch(later)
            later_patched.append(True)

        class FirstBatch(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                marks.setdefault("first trace and first batch", time.time())

        return fit_fold(setup, k, tracked, [*extra, FirstBatch()])

    later_patched: list[bool] = []
    losslab.train.train, losslab.train.fit_fold = train_stamped, fit_fold_stamped
    sys.argv = [TRAIN]
    with contextlib.suppress(SystemExit):  # run_app ends the process as the command would
        runpy.run_path(TRAIN, run_name="__main__")
    Path(out).write_text(json.dumps(marks))


def phase_times(cwd: Path) -> dict[str, float]:
    """Seconds each phase of one default run took, from process start to its first batch."""
    import json

    marks = cwd / "marks.json"
    t0 = time.time()
    subprocess.run(
        [sys.executable, __file__, "--phases-driver", str(marks)],
        cwd=cwd,
        check=True,
        capture_output=True,
    )
    ends = json.loads(marks.read_text())
    seconds, last = {}, t0
    for name in PHASES:  # phases run in this order; each one's end is the next one's start
        seconds[name] = ends[name] - last
        last = ends[name]
    return seconds


def main() -> None:
    if sys.argv[1:2] == ["--phases-driver"]:
        return phases_driver(sys.argv[2])
    args = parser(__doc__.splitlines()[0], repeats=5).parse_args()
    use_device(args.device)
    cwd = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    rows = {
        "python train.py --help": [],
        "python train.py --cfg job": [],
        "python train.py: start to first training batch": [],
    }
    answer_time("--help", cwd=cwd)  # warm the file cache
    phases: dict[str, list[float]] = {name: [] for name in PHASES}
    for _ in range(args.repeats):
        rows["python train.py --help"].append(answer_time("--help", cwd=cwd))
        rows["python train.py --cfg job"].append(answer_time("--cfg", "job", cwd=cwd))
        rows["python train.py: start to first training batch"].append(first_batch_time(cwd))
        for name, value in phase_times(cwd).items():
            phases[name].append(value)
        print({k: round(v[-1], 2) for k, v in rows.items()}, flush=True)
    lines = [
        "## 4. Start-up",
        "",
        f"Machine: {machine(args.device)}. Command: `{command()}`. Median of {args.repeats} "
        "runs each. Goal: `--help` and `--cfg job` under 1.5 s (no TensorFlow import).",
        "",
        "| command | seconds |",
        "|---|---|",
        *[f"| {name} | {median(values):.2f} |" for name, values in rows.items()],
        "",
        "Where the time to the first batch goes (the default run with each step's end "
        f"time-stamped in the process, medians of {args.repeats}; the first batch here is the "
        "end of the first training step, after the model's first trace):",
        "",
        "| phase | seconds |",
        "|---|---|",
        *[f"| {name} | {median(values):.2f} |" for name, values in phases.items()],
        f"| all, to the first batch | {sum(median(v) for v in phases.values()):.2f} |",
    ]
    publish("startup", lines, args)


if __name__ == "__main__":
    main()
