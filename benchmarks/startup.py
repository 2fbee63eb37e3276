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


def main() -> None:
    args = parser(__doc__.splitlines()[0], repeats=5).parse_args()
    use_device(args.device)
    cwd = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    rows = {
        "python train.py --help": [],
        "python train.py --cfg job": [],
        "python train.py: start to first training batch": [],
    }
    answer_time("--help", cwd=cwd)  # warm the file cache
    for _ in range(args.repeats):
        rows["python train.py --help"].append(answer_time("--help", cwd=cwd))
        rows["python train.py --cfg job"].append(answer_time("--cfg", "job", cwd=cwd))
        rows["python train.py: start to first training batch"].append(first_batch_time(cwd))
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
    ]
    publish("startup", lines, args)


if __name__ == "__main__":
    main()
