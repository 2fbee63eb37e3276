"""Figure 1: what recording every batch and epoch metric costs a fit.

Workload: the reference MLP (784-512-512-128-128-1, Dropout 0.75, Adam; metrics loss,
accuracy, AUC, precision, recall) on 6,049 x 784 float inputs, 3 epochs, at batch 64 and 512.
Rows on the TensorFlow backend, relative to no callback: the naive pattern, one synchronous
``mlflow.log_metric`` per metric per batch and epoch; the same with MLflow's async logging
(``synchronous=False``) and ``mlflow.flush_async_logging()``;
``mlflow.keras.MlflowCallback(log_every_epoch=False, log_every_n_steps=1)`` and
``mlflow.keras.autolog(log_every_n_steps=1, log_models=False)`` with their final flush; W&B's
``WandbMetricsLogger(log_freq="batch")`` in an offline run with ``wandb.finish()``; Neptune's
``NeptuneCallback(log_on_batch=True)`` in an offline run with ``run.stop()``; losslab's
callback on a run opened as the pipeline opens it (``MlflowLogger(run=TrackedRun(...))``) on
SQLite and on a ``mlflow server`` at 127.0.0.1. Then losslab's public
callback, ``losslab.keras.MlflowLogger``, on each Keras backend (tensorflow, jax, torch), each
in its own process against its own no-callback baseline. Points recorded are read back from
the store (or counted in the offline files). Rows whose package is missing say how to add it.

    python benchmarks/logging_overhead.py [--device cpu|gpu] [--repeats 3] [--port N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from functools import partial
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import logging_rows as rows  # noqa: E402
from benchmarks.common import command, machine, median, parser, publish, use_device  # noqa: E402

N, EPOCHS, BATCHES = 6049, 3, (64, 512)
BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}  # backend: pip name
RESULT = "RESULT "  # the line a backend's process answers with
PUBLIC = "losslab.keras.MlflowLogger() in mlflow.start_run()"
NEPTUNE = "losslab.keras.NeptuneCallback(log_on_batch=True) in mlflow.start_run()"
IMPORTS = ("mlflow.keras", "losslab.keras", "losslab.tracking.session", "wandb", "neptune")


def main_rows(server_url: str) -> dict[str, tuple[rows.Row, str]]:
    """The rows measured in this process (TensorFlow backend): name -> (row, note)."""
    return {
        "no callback": (rows.no_callback, ""),
        "naive: log_metric per metric per batch (sync)": (rows.naive, "in the store"),
        "MLflow async: log_metric(..., synchronous=False) per metric per batch"
        " + flush_async_logging()": (rows.mlflow_async, "in the store"),
        "mlflow.keras.MlflowCallback(log_every_n_steps=1) + flush": (
            rows.mlflow_callback,
            "in the store; batches only",
        ),
        "mlflow.keras.autolog(log_every_n_steps=1, log_models=False) + flush": (
            rows.mlflow_autolog,
            "in the store; batches only, also params, dataset, summary",
        ),
        'W&B WandbMetricsLogger(log_freq="batch"), offline + finish()': (
            rows.wandb_offline,
            "local offline file, counted from it; also learning rate",
        ),
        "Neptune NeptuneCallback(log_on_batch=True), offline + stop()": (
            rows.neptune_offline,
            "local offline files, counted from them; also learning rate",
        ),
        "losslab MlflowLogger(run=TrackedRun), SQLite": (rows.losslab_tracked, "in the store"),
        "losslab MlflowLogger(run=TrackedRun), mlflow server on 127.0.0.1": (
            partial(rows.losslab_tracked, uri=server_url),
            "in the server's store",
        ),
    }


def backend_rows() -> dict[str, tuple[rows.Row, str]]:
    return {
        "no callback": (rows.no_callback, ""),
        PUBLIC: (rows.losslab_public, "in the store"),
        NEPTUNE: (rows.losslab_neptune, "in the store, Neptune's keys"),
    }


def workloads(folder: Path, uri: str) -> dict[int, rows.Workload]:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((N, rows.FEATURES), dtype=np.float32)
    y = (rng.random(N) < 0.02).astype("float32")
    return {b: rows.Workload(x, y, b, uri, folder, EPOCHS) for b in BATCHES}


def measure_batch(work: rows.Workload, table: dict, repeats: int) -> dict[str, dict]:
    """Every row ``repeats`` times, interleaved and rotated: every row sees the same noise."""
    rows.no_callback(work)  # warm-up: trace the train step
    names, runs, texts = list(table), {n: [] for n in table}, {}
    for rep in range(repeats):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            if name in texts:
                continue
            try:
                runs[name].append(table[name][0](work))
            except rows.Unavailable as why:
                texts[name] = str(why)
    base = median([m.seconds for m in runs["no callback"]])
    out = {name: {"text": text} for name, text in texts.items()}
    for name, measured in runs.items():
        if name not in texts:
            seconds = median([m.seconds for m in measured])
            points = [m.points for m in measured if m.points is not None]
            out[name] = {
                "seconds": seconds,
                "ratio": seconds / base,
                "points": min(points) if points else None,  # the worst repetition
                "expected": measured[0].expected,
                "each": [round(m.seconds, 3) for m in measured],  # in the order measured
            }
    return out


def measure(table: dict, works: dict[int, rows.Workload], repeats: int) -> dict[int, dict]:
    rows.import_ahead(IMPORTS)
    return {batch: measure_batch(work, table, repeats) for batch, work in works.items()}


def print_each(backend: str, results: dict[int, dict]) -> None:
    """Every repetition's seconds, on stderr: how far the figures spread."""
    for batch, by_name in results.items():
        for name, result in by_name.items():
            print(backend, batch, name, result.get("each", result.get("text")), file=sys.stderr)


def run_backend(backend: str, args: argparse.Namespace, folder: Path) -> dict[int, dict]:
    """The public callback's rows on ``backend``, measured in a process of their own."""
    if importlib.util.find_spec(backend) is None:
        text = {"text": f"not installed: pip install {BACKENDS[backend]}"}
        return {b: dict.fromkeys(backend_rows(), text) for b in BATCHES}
    cmd = [sys.executable, __file__, "--backend", backend, "--folder", str(folder)]
    cmd += ["--device", args.device, "--repeats", str(args.repeats), "--no-write"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    answer = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode or not answer:
        sys.stderr.write(proc.stderr[-3000:])
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        text = {"text": f"failed: {last}"}
        return {b: dict.fromkeys(backend_rows(), text) for b in BATCHES}
    return {int(b): rows_ for b, rows_ in json.loads(answer[-1][len(RESULT) :]).items()}


def backend_main(args: argparse.Namespace) -> None:
    """In a process of its own: Keras on ``args.backend``, the public callback's rows."""
    folder = Path(args.folder)
    works = workloads(folder, f"sqlite:///{folder}/{args.backend}.db")
    print(RESULT + json.dumps(measure(backend_rows(), works, args.repeats)), flush=True)


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def versions() -> str:
    names = ("keras", "mlflow", "wandb", "neptune", "neptune-tensorflow-keras", "jax", "torch")
    found = [f"{name} {v}" for name in names if (v := version(name))]
    return ", ".join(found)


def cells(result: dict) -> tuple[str, str]:
    if "text" in result:
        return result["text"], "–"
    return f"{result['seconds']:.2f} s", f"{result['ratio']:.3f}"


def points(results: dict[int, dict]) -> str:
    got = [results[b].get("points") for b in BATCHES]
    if None in got:
        return ""
    expected = [results[b]["expected"] for b in BATCHES]
    return " / ".join(f"{p} of {e}" for p, e in zip(got, expected, strict=True))


def table_lines(sections: list[tuple[str, dict, dict[int, dict]]]) -> list[str]:
    """``sections``: (backend, rows, results) in the order shown."""
    lines = [
        "| variant | backend | batch 64 | ratio | batch 512 | ratio | points recorded "
        "of expected, 64 / 512 | where the points are |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, table, results in sections:
        for name, (_row, note) in table.items():
            by_batch = {b: results[b][name] for b in BATCHES}
            (s64, r64), (s512, r512) = cells(by_batch[64]), cells(by_batch[512])
            lines.append(
                f"| {name} | {backend} | {s64} | {r64} | {s512} | {r512} "
                f"| {points(by_batch)} | {note} |"
            )
    return lines


def describe(args: argparse.Namespace) -> list[str]:
    return [
        "## 1. Logging overhead (fit + final flush, relative to no callback)",
        "",
        f"Machine: {machine(args.device)}. Command: `{command()}`. {versions()}. "
        f"Median of {args.repeats} interleaved repetitions (order rotated); "
        f"{N} x {rows.FEATURES} inputs, {EPOCHS} epochs, SQLite store unless noted. "
        "Each backend's rows of losslab's public callback run in a process of their own, "
        "against that process's no-callback baseline. Goal for losslab: at most 1.05 "
        "(SQLite; the public callback at batch 64 and 512 on each backend) and 1.10 (server); "
        "every point stored (count checked).",
        "",
    ]


FOOTER = [
    "",
    "What the third-party rows record, besides each batch's and epoch's metrics:",
    "",
    "- MLflow async: one `mlflow.log_metric(key, value, step, synchronous=False)` per metric "
    "per batch (`batch_<key>`, step = global batch) and per epoch (step = epoch); MLflow's "
    "logging thread merges the queued calls into batches; `mlflow.flush_async_logging()` "
    "waits for it.",
    "- `mlflow.keras.MlflowCallback(log_every_epoch=False, log_every_n_steps=1)`: the "
    "optimizer's config as params and `model_summary.txt` at train begin; each batch's "
    "metrics at step = the optimizer's iteration count (read from the model every batch), "
    "asynchronously; no epoch metrics, since every-n-steps and every-epoch logging exclude "
    "each other.",
    "- `mlflow.keras.autolog(log_every_epoch=False, log_every_n_steps=1, log_models=False)`: "
    "patches `keras.Model.fit` to log `fit`'s arguments as params and the training arrays "
    "as a dataset input, then adds the same `MlflowCallback`. Its default `log_models=True` "
    "would also save the `.keras` model as a logged model after `fit`, which no other row "
    "does, so the row turns it off.",
    '- W&B `WandbMetricsLogger(log_freq="batch")`: `batch/<key>` and `batch/learning_rate` '
    "against `batch/batch_step` every batch, `epoch/<key>` and `epoch/learning_rate` every "
    "epoch, through `wandb.log`; `wandb.init` also records system metrics, console output "
    "and the installed packages. Offline, the points go to a local `.wandb` file, counted "
    "from it; `wandb.finish()` returns before W&B's core process (a process of its own) "
    "has written that file, so the write is not in the figure.",
    "- Neptune `NeptuneCallback(run=run, log_on_batch=True)`: `training/train/batch/<key>` "
    "every batch, `training/train/epoch/<key>` every epoch and the learning rate at each "
    "epoch's start, the optimizer's config and `fit`'s params at train begin, the model "
    "summary at train end; `neptune.init_run` also records hardware metrics, stdout and "
    "stderr and the script's source. Offline, the operations go to local files under "
    "`.neptune/`, counted from them; `run.stop()` waits until they are written.",
    "",
    "The optional rows need `pip install wandb`, `pip install neptune "
    "neptune-tensorflow-keras`, `pip install jax` and `pip install torch`; without them "
    "their rows say so.",
]


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=None, help="the mlflow server's port")
    p.add_argument("--backend", choices=list(BACKENDS), help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend or "tensorflow"
    use_device(args.device)
    if args.backend:
        return backend_main(args)
    from tests.conftest import MlflowServer

    folder = Path(tempfile.mkdtemp(prefix="bench-logging-"))
    (folder / "server").mkdir()
    server = MlflowServer(folder / "server", args.port)
    try:
        table = main_rows(server.start())
        results = measure(table, workloads(folder, f"sqlite:///{folder}/mlflow.db"), args.repeats)
        sections = [("tensorflow", table, results)]
    finally:
        server.stop()
    for backend in BACKENDS:
        sections.append((backend, backend_rows(), run_backend(backend, args, folder)))
    for backend, _table, results in sections:
        print_each(backend, results)
    publish("logging-overhead", describe(args) + table_lines(sections) + FOOTER, args)


if __name__ == "__main__":
    main()
