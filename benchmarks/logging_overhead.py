"""Figure 1: what recording every batch and epoch metric costs a fit.

Workload: the reference MLP (784-512-512-128-128-1, Dropout 0.75, Adam; metrics loss,
accuracy, AUC, precision, recall) on 6,049 x 784 float inputs, 3 epochs, at batch 64 and 512.
Rows: no callback (1.0); the naive pattern, one synchronous ``mlflow.log_metric`` per metric
per batch and epoch; ``mlflow.keras.MlflowCallback(log_every_epoch=False,
log_every_n_steps=1)`` with its final flush; losslab's callback on SQLite and on a
``mlflow server`` at 127.0.0.1. Every stored point is counted for losslab's rows.

    python benchmarks/logging_overhead.py [--device cpu|gpu] [--repeats 3]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import command, machine, median, parser, publish, use_device  # noqa: E402

N, FEATURES, EPOCHS = 6049, 784, 3
BATCH_KEYS = 5  # loss, accuracy, auc, precision, recall
EPOCH_KEYS = BATCH_KEYS + 2  # + learning_rate, epoch_time_s


def build_model():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((FEATURES,))
    x = inputs
    for units in (512, 512, 128, 128):
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(0.75)(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile(
        optimizer="adam",
        loss="binary_crossentropy",
        metrics=[
            "accuracy",
            keras.metrics.AUC(name="auc"),
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
        ],
    )
    return model


def naive_callback():
    """The Neptune pattern ported to MLflow: a synchronous call per metric per batch."""
    import keras
    import mlflow

    class Naive(keras.callbacks.Callback):
        step = 0

        def on_train_batch_end(self, batch, logs=None):
            for key, value in (logs or {}).items():
                mlflow.log_metric(f"batch_{key}", value, step=self.step)
            self.step += 1

        def on_epoch_end(self, epoch, logs=None):
            for key, value in (logs or {}).items():
                mlflow.log_metric(key, value, step=epoch)

    return Naive()


def timed_fit(x, y, batch: int, variant: str, uri: str) -> tuple[float, int | None]:
    """Seconds for fit plus the final flush, and the number of points stored (losslab)."""
    import mlflow

    from losslab.tracking.callback import MlflowMetricsLogger
    from losslab.tracking.run import TrackedRun

    model = build_model()
    if variant == "none":
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=EPOCHS, verbose=0)
        return time.perf_counter() - t0, None
    if variant.startswith("losslab"):
        with TrackedRun(uri, "bench-logging") as run:
            cb = MlflowMetricsLogger(run.writer)
            t0 = time.perf_counter()
            model.fit(x, y, batch_size=batch, epochs=EPOCHS, verbose=0, callbacks=[cb])
            elapsed = time.perf_counter() - t0  # on_train_end waited for every point
        client = run.client
        keys = client.get_run(run.run_id).data.metrics
        stored = sum(len(client.get_metric_history(run.run_id, k)) for k in keys)
        return elapsed, stored
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench-logging")
    with mlflow.start_run():
        cb = (
            naive_callback()
            if variant == "naive"
            else mlflow.keras.MlflowCallback(log_every_epoch=False, log_every_n_steps=1)
        )
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=EPOCHS, verbose=0, callbacks=[cb])
        mlflow.flush_async_logging()
        elapsed = time.perf_counter() - t0
    mlflow.set_tracking_uri(None)
    return elapsed, None


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    use_device(args.device)
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((N, FEATURES), dtype=np.float32)
    y = (rng.random(N) < 0.02).astype("float32")
    folder = Path(tempfile.mkdtemp(prefix="bench-logging-"))
    sqlite = f"sqlite:///{folder}/mlflow.db"
    from tests.conftest import MlflowServer

    (folder / "server").mkdir()
    server = MlflowServer(folder / "server")
    url = server.start()
    variants = {
        "no callback": ("none", sqlite),
        "naive: log_metric per metric per batch (sync)": ("naive", sqlite),
        "mlflow.keras.MlflowCallback(log_every_n_steps=1) + flush": ("mlflow", sqlite),
        "losslab MlflowMetricsLogger, SQLite": ("losslab", sqlite),
        "losslab MlflowMetricsLogger, mlflow server on 127.0.0.1": ("losslab-server", url),
    }
    rows = {}
    try:
        for batch in (64, 512):
            timed_fit(x, y, batch, "none", sqlite)  # warm-up: trace the train step
            times: dict[str, list[float]] = {name: [] for name in variants}
            names = list(variants)
            for rep in range(args.repeats):
                order = names[rep % len(names) :] + names[: rep % len(names)]
                for name in order:  # interleaved and rotated: every row sees the same noise
                    variant, uri = variants[name]
                    seconds, stored = timed_fit(x, y, batch, variant, uri)
                    times[name].append(seconds)
                    if stored is not None:
                        steps = EPOCHS * int(np.ceil(N / batch))
                        expected = steps * BATCH_KEYS + EPOCHS * EPOCH_KEYS
                        assert stored == expected, (name, stored, expected)
            base = median(times["no callback"])
            rows[batch] = {name: (median(t), median(t) / base) for name, t in times.items()}
            print(batch, {k: round(v[1], 3) for k, v in rows[batch].items()}, flush=True)
    finally:
        server.stop()
    lines = [
        "## 1. Logging overhead (fit + final flush, relative to no callback)",
        "",
        f"Machine: {machine(args.device)}. Command: `{command()}`. "
        f"Median of {args.repeats} interleaved repetitions (order rotated); "
        f"{N} x {FEATURES} inputs, "
        f"{EPOCHS} epochs, SQLite store unless noted. Goal for losslab: at most 1.05 "
        "(SQLite) and 1.10 (server); every point stored (count checked).",
        "",
        "| variant | batch 64 | ratio | batch 512 | ratio |",
        "|---|---|---|---|---|",
    ]
    for name in variants:
        (s64, r64), (s512, r512) = rows[64][name], rows[512][name]
        lines.append(f"| {name} | {s64:.2f} s | {r64:.3f} | {s512:.2f} s | {r512:.3f} |")
    publish("logging-overhead", lines, args)


if __name__ == "__main__":
    main()
