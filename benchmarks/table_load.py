"""Figure 10: a user's table, from the command's start to its first training batch.

A generated table (``--rows`` rows x 30 columns: 24 numeric with 2% missing, 4 string
categories, one few-valued integer, the label; 2% positives) as CSV. Measured in one run:

- baseline: ``pandas.read_csv`` of the file, plus one epoch of the reference MLP
  (``model=mlp``) on the encoded arrays, in this process;
- losslab: ``python train.py data=table data.path=... data.label=churned`` from its start to
  its "first batch" line (reading, checking, splitting, encoding, TensorFlow's start), with
  the command's peak memory (VmHWM) at that moment;
- where that time goes: the part before the job (Python, Hydra composing the config), the job
  to its first batch (Keras' start, with the table loading beside it in a thread), and, alone,
  losslab's loading in this process (``data.load``: read, checks, split, encoding) and Keras'
  start in a fresh process.

Both at batch 2048 (``trainer.batch_size=2048``), where an epoch is shortest and the loading
weighs most. Goal: losslab at most 2x the baseline.

    python benchmarks/table_load.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import command, machine, median, parser, publish, use_device  # noqa: E402

TRAIN = str(Path(__file__).resolve().parents[1] / "train.py")
BATCH = 2048
OVERRIDES = ["data=table", "data.label=churned", f"trainer.batch_size={BATCH}", "tracking=none"]


def make_table(rows: int, path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(rows, 24)).astype(np.float32)
    numbers[rng.random(numbers.shape) < 0.02] = np.nan
    df = pd.DataFrame(numbers, columns=[f"x{i}" for i in range(24)])
    for i, levels in enumerate((3, 5, 12, 40)):
        df[f"c{i}"] = np.array([f"level{j}" for j in range(levels)])[rng.integers(0, levels, rows)]
    df["calls"] = rng.poisson(1.0, rows)
    score = np.nan_to_num(numbers[:, 0]) + 0.5 * (df["c0"] == "level0") + rng.normal(0, 1, rows)
    df["churned"] = np.where(score > np.quantile(score, 0.98), "yes", "no")
    df.to_csv(path, index=False, float_format="%.5g")


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def losslab_first_batch(path: Path, cwd: Path) -> tuple[float, float, float]:
    """Seconds from starting the command to its "first batch" line, the seconds of those
    that its job reports (from the job's start), and its peak MiB then."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, TRAIN, *OVERRIDES, f"data.path={path}", "trainer.epochs=1"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out = []
    for line in proc.stdout:
        out.append(line)
        found = re.search(r"first batch after ([\d.]+)s", line)
        if found:
            seconds, peak = time.perf_counter() - t0, peak_mib(proc.pid)
            proc.terminate()
            proc.wait()
            return seconds, float(found.group(1)), peak
    proc.wait()
    raise RuntimeError("the command logged no first batch:\n" + "".join(out[-20:]))


def keras_start() -> float:
    """Seconds a fresh process takes to start Keras as losslab does."""
    t0 = time.perf_counter()
    code = "from losslab import backend; backend.start()"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t0


def baseline(path: Path, root: Path) -> tuple[float, float, float, float]:
    """(read_csv seconds, one epoch's seconds, losslab's loading seconds, this process's
    peak MiB)."""
    import keras

    from losslab import data, models
    from losslab.composition import compose
    from losslab.config import to_objects

    t0 = time.perf_counter()
    pd.read_csv(path)
    read = time.perf_counter() - t0
    conf = to_objects(compose([*OVERRIDES, f"data.path={path}"], root=root))
    t0 = time.perf_counter()
    ds = data.load(conf.data, conf.seed, root)
    load = time.perf_counter() - t0
    model = models.build(conf.model, ds.model_shape())
    model.compile(optimizer="adam", loss="binary_crossentropy")
    t0 = time.perf_counter()
    model.fit(ds.x_train, ds.y_train, batch_size=BATCH, epochs=1, verbose=0)
    epoch = time.perf_counter() - t0
    keras.backend.clear_session()
    return read, epoch, load, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(args) -> tuple[dict[str, list[float]], float, float]:
    """Every repetition's seconds by part, the file's MiB and the baseline's peak MiB."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        path = root / "table.csv"
        make_table(args.rows, path)
        size = path.stat().st_size / 2**20
        times: dict[str, list[float]] = {k: [] for k in PARTS}
        for i in range(args.repeats):  # order alternated: a busy spell hits both sides
            if i % 2:
                ours, job, peak = losslab_first_batch(path, root)
            read, epoch, load, base_peak = baseline(path, root)
            if not i % 2:
                ours, job, peak = losslab_first_batch(path, root)
            keras_s = keras_start()
            row = (read, epoch, ours, ours - job, job, load, keras_s, peak)
            for key, value in zip(PARTS, row, strict=True):
                times[key].append(value)
            print(f"read_csv {read:.2f} s, epoch {epoch:.2f} s, ours {ours:.2f} s", flush=True)
    return times, size, base_peak


PARTS = ("read", "epoch", "ours", "before_job", "job", "load", "keras", "peak")


def main() -> None:
    p = parser(__doc__.splitlines()[0], repeats=3)
    p.add_argument("--rows", type=int, default=1_000_000)
    args = p.parse_args()
    use_device(args.device)
    times, size, base_peak = measure(args)
    m = {key: median(values) for key, values in times.items()}
    base = m["read"] + m["epoch"]
    lines = [
        "## 10. Your own table: start to first batch",
        "",
        f"Machine: {machine(args.device)}. Command: `{command()}`. A generated CSV of "
        f"{args.rows:,} rows x 30 columns ({size:.0f} MiB: 24 numeric with 2% missing, 4 string "
        "categories, a few-valued integer, the label `churned` with 2% positives); batch "
        f"{BATCH}; median of {args.repeats} (order alternated). Goal: losslab at most 2x the "
        "baseline.",
        "",
        "| | seconds | peak memory (MiB) |",
        "|---|---|---|",
        f"| `pandas.read_csv` of the file | {m['read']:.2f} | |",
        f"| one epoch of `model=mlp` on the encoded arrays | {m['epoch']:.2f} | |",
        f"| baseline: both | {base:.2f} | {base_peak:.0f} (this process, both done) |",
        f"| `python train.py data=table ...`: start to first batch | {m['ours']:.2f} | "
        f"{m['peak']:.0f} |",
        f"| **ratio** | **{m['ours'] / base:.2f}** | |",
        "",
        "Where the command's time goes (medians, seconds):",
        "",
        "| part | seconds |",
        "|---|---|",
        f"| before the job: Python, Hydra composing the config | {m['before_job']:.2f} |",
        f"| the job to its first batch: Keras' start, the table loading beside it | "
        f"{m['job']:.2f} |",
        f"| alone: losslab's loading (`data.load`: read, checks, split, encoding) | "
        f"{m['load']:.2f} |",
        f"| alone: Keras' start in a fresh process | {m['keras']:.2f} |",
        "",
        "Each repetition, baseline (read + epoch) against losslab, seconds: "
        + ", ".join(
            f"{r + e:.1f} vs {o:.1f}"
            for r, e, o in zip(times["read"], times["epoch"], times["ours"], strict=True)
        )
        + ".",
    ]
    publish("table-load", lines, args)


if __name__ == "__main__":
    main()
