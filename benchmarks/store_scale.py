"""Figure 8: a 100-run sweep with every batch logged, in the store and read back.

Each run records what the reference MLP of figure 1 records over 10 epochs at batch 64 (6,049
samples: 95 batches an epoch): 5 metrics per batch, 13 per epoch (training and validation
scores, learning rate, epoch time, samples per second), 12 final scores and 3 params, written
by losslab's ``MetricWriter`` as the callback writes them, as children of one parent run. No
model is trained: what is measured is what the store holds and how fast it reads back. For
each store (a SQLite file; an ``mlflow server`` on 127.0.0.1 backed by PostgreSQL) and
``tracking.every_n_batches`` (1 and 10): seconds to write the runs, the store's size, the
seconds to read the first run's history (one batch metric; every metric) once the store holds
25%, 50% and 100% of the runs, and ``pipelines/compare.py`` over all of them.

    python benchmarks/store_scale.py [--runs 100]
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import command, machine, median, parser, publish  # noqa: E402

EPOCHS, BATCHES, SAMPLES = 10, 95, 6049
BATCH_KEYS = ("loss", "accuracy", "auc", "precision", "recall")
EPOCH_KEYS = (
    *BATCH_KEYS,
    *(f"val_{k}" for k in BATCH_KEYS),
    "learning_rate",
    "epoch_time_s",
    "samples_per_second",
)
FINAL_KEYS = tuple(f"test_{k}" for k in BATCH_KEYS) + (
    "test_recall_at_fpr",
    "test_pr_auc",
    "val_recall_at_fpr",
    "objective",
    "best_epoch",
    "epochs_run",
    "test_majority_recall",
)


def write_run(client, experiment_id: str, parent_id: str, number: int, every_n: int) -> str:
    """One child run with the metric stream of a 10-epoch fit, stored when this returns."""
    from mlflow.entities import Param

    from losslab.tracking.writer import MetricWriter

    rng = random.Random(number)
    lr, dropout = 10 ** rng.uniform(-5, -1), rng.uniform(0, 0.8)
    tags = {
        "mlflow.parentRunId": parent_id,
        "mlflow.runName": f"#{number} lr={lr:.3g} dropout={dropout:.3g}",
        "losslab.run_type": "job",
        "losslab.overrides": f"optimizer.lr={lr} model.dropout={dropout}",
    }
    run_id = client.create_run(experiment_id, tags=tags).info.run_id
    client.log_batch(
        run_id,
        params=[Param("optimizer.lr", str(lr)), Param("model.dropout", str(dropout))]
        + [Param("trainer.batch_size", "64")],
    )
    writer = MetricWriter(client, run_id)
    for epoch in range(EPOCHS):
        for batch in range(BATCHES):
            step = epoch * BATCHES + batch
            if step % every_n == 0:
                writer.add(step, {k: rng.random() for k in BATCH_KEYS}, "batch/")
        writer.add(epoch, {k: rng.random() for k in EPOCH_KEYS})
    writer.add(0, {k: rng.random() for k in FINAL_KEYS})
    writer.close()
    client.set_terminated(run_id, "FINISHED")
    return run_id


def read_seconds(client, run_id: str) -> tuple[float, float]:
    """One batch metric's full history; then every metric's (what a run's charts ask for)."""
    t0 = time.perf_counter()
    client.get_metric_history(run_id, "batch/loss")
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    for key in [*(f"batch/{k}" for k in BATCH_KEYS), *EPOCH_KEYS]:
        client.get_metric_history(run_id, key)
    return one, time.perf_counter() - t0


def sweep(uri: str, runs: int, every_n: int, size_of) -> dict[str, float]:
    """Write ``runs`` children of one parent; read back as the store fills; compare them."""
    from mlflow import MlflowClient

    from losslab.compare import compare

    client = MlflowClient(uri)
    experiment = client.create_experiment(f"scale-{every_n}-{time.time_ns()}")
    parent = client.create_run(experiment, tags={"losslab.run_type": "sweep"}).info.run_id
    checkpoints = {max(1, math.ceil(runs * f)): f for f in (0.25, 0.5, 1.0)}
    out: dict[str, float] = {}
    written, first = 0.0, None
    for i in range(runs):
        t0 = time.perf_counter()
        run_id = write_run(client, experiment, parent, i, every_n)
        written += time.perf_counter() - t0
        first = first or run_id
        if i + 1 in checkpoints:
            reads = [read_seconds(client, first) for _ in range(3)]
            share = f"{checkpoints[i + 1]:.0%}"
            out[f"read one at {share}"] = median([r[0] for r in reads])
            out[f"read all at {share}"] = median([r[1] for r in reads])
    client.set_terminated(parent, "FINISHED")
    out["write s"] = written
    out["size MB"] = size_of() / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        compare(uri, tmp, parent_run_id=parent, log_to_parent=False)
        out["compare s"] = time.perf_counter() - t0
    return out


@contextlib.contextmanager
def sqlite_store(folder: Path) -> Iterator[tuple[str, callable]]:
    path = folder / "mlflow.db"
    yield f"sqlite:///{path}", lambda: path.stat().st_size


@contextlib.contextmanager
def postgres_backed_server(folder: Path) -> Iterator[tuple[str, callable]]:
    import psycopg

    from tests.helpers import MlflowServer, postgres_server

    with postgres_server("mlflow") as backend:
        server = MlflowServer(folder, backend=backend)
        url = server.start()
        plain = backend.replace("+psycopg", "")

        def size() -> int:
            with psycopg.connect(plain) as conn:
                return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]

        try:
            yield url, size
        finally:
            server.stop()


def main() -> None:
    p = parser(__doc__.splitlines()[0], repeats=1)
    p.add_argument("--runs", type=int, default=100)
    args = p.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per read
    rows = {}
    for name, store in (
        ("SQLite file", sqlite_store),
        ("server + PostgreSQL", postgres_backed_server),
    ):
        for every_n in (1, 10):
            with tempfile.TemporaryDirectory() as tmp, store(Path(tmp)) as (uri, size_of):
                rows[(name, every_n)] = sweep(uri, args.runs, every_n, size_of)
            print(name, every_n, {k: round(v, 3) for k, v in rows[(name, every_n)].items()})
    publish("store-scale", table(rows, args), args)


def table(rows: dict, args) -> list[str]:
    points = EPOCHS * BATCHES * len(BATCH_KEYS)
    lines = [
        f"## 8. The store after a {args.runs}-run sweep with batches logged",
        "",
        f"Machine: {machine(args.device)}. Command: `{command()}`. Each run: what the reference "
        f"MLP records in 10 epochs at batch 64 ({points:,} batch points at every_n_batches=1, "
        f"{EPOCHS * len(EPOCH_KEYS)} epoch points, {len(FINAL_KEYS)} scores, 3 params), written "
        "by losslab's metric writer; reads: the first run's history once the store holds 25%, "
        "50%, 100% of the runs (median of 3), one batch metric / every metric. The sweeps' "
        "default is `tracking.every_n_batches=10` (the `hparams_search` presets); single runs "
        "keep every batch.",
        "",
        "| store | every_n_batches | write s | size MB | 1000 runs (x10) GB "
        "| read one (25/50/100%) s | read all (25/50/100%) s | compare.py s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (name, every_n), r in rows.items():
        one = "/".join(f"{r[f'read one at {s}']:.3f}" for s in ("25%", "50%", "100%"))
        every = "/".join(f"{r[f'read all at {s}']:.3f}" for s in ("25%", "50%", "100%"))
        lines.append(
            f"| {name} | {every_n} | {r['write s']:.1f} | {r['size MB']:.1f} "
            f"| {r['size MB'] * 10 / 1000:.2f} | {one} | {every} | {r['compare s']:.1f} |"
        )
    return lines


if __name__ == "__main__":
    main()
