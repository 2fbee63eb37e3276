"""The chart in README's "Coming from Neptune": a Neptune history moved into MLflow as
neptune-exporter moves it, and a new run of the same script with one import changed, on the
same keys of one MLflow store.

    python docs/neptune_chart.py        # writes docs/neptune_migration.png

The Neptune run is real (Neptune's own Keras callback, ``NEPTUNE_MODE=offline``); its offline
operation log is written into MLflow under the keys neptune-exporter gives Neptune's paths.
Both charts are read back from MLflow by key, as ``mlflow ui`` reads them.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path

import keras
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

OUT = Path(__file__).with_name("neptune_migration.png")
KEYS = ("training/train/epoch/loss", "training/validation/epoch/loss")


def digits() -> tuple[np.ndarray, ...]:
    """The default data's pair: 9s against 3s, 8x8 pixels, split in half."""
    x, y = load_digits(return_X_y=True)
    keep = np.isin(y, (9, 3))
    x, y = (x[keep] / 16).astype("float32"), (y[keep] == 3).astype("float32")
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    half = len(y) // 2
    return x[:half], y[:half], x[half:], y[half:]


def fit(callback: keras.callbacks.Callback, lr: float) -> None:
    x, y, x_val, y_val = digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(16, "relu"), keras.layers.Dense(1, "sigmoid")]
    )
    model.compile(keras.optimizers.Adam(lr), "binary_crossentropy")
    model.fit(x, y, validation_data=(x_val, y_val), epochs=15, callbacks=[callback], verbose=0)


def exporter_key(path: list[str]) -> str:
    """neptune-exporter's rule: characters outside [A-Za-z0-9_-. /] to _, 250 at most."""
    return re.sub(r"[^a-zA-Z0-9_\-\.\s/]", "_", "/".join(path))[:250]


def neptune_history(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Each float series of Neptune's offline operation log: key -> (step, value)."""
    series: dict[str, list[tuple[int, float]]] = {}
    for log in sorted(folder.rglob("data-*.log")):
        for line in filter(str.strip, log.read_text().splitlines()):
            op = json.loads(line)["obj"]
            if op["type"] == "LogFloats" and op["path"][0] == "training":
                points = series.setdefault(exporter_key(op["path"]), [])
                for point in op["values"]:
                    step = point.get("step")
                    points.append((len(points) if step is None else int(step), point["value"]))
    return series


def migrated_run(client: MlflowClient, experiment: str, folder: Path) -> str:
    """The Neptune history as an MLflow run, keys and steps as the exporter writes them."""
    run = client.create_run(experiment, run_name="migrated from Neptune (lr 0.01)")
    now = int(time.time() * 1000)
    for key, points in neptune_history(folder).items():
        metrics = [Metric(key, value, now, step) for step, value in points]
        client.log_batch(run.info.run_id, metrics=metrics)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def main() -> None:
    import neptune
    from neptune_tensorflow_keras import NeptuneCallback as TheirCallback

    from losslab.keras import NeptuneCallback

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        os.environ["NEPTUNE_MODE"] = "offline"
        uri = f"sqlite:///{tmp}/mlflow.db"
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(uri)
        experiment = client.create_experiment("from-neptune")
        before = neptune.init_run(capture_hardware_metrics=False, source_files=[])
        fit(TheirCallback(run=before), lr=0.01)
        before.stop()
        migrated = migrated_run(client, experiment, Path(tmp) / ".neptune")
        with mlflow.start_run(
            experiment_id=experiment, run_name="new: one import changed (lr 0.003)"
        ) as run:
            fit(NeptuneCallback(), lr=0.003)
        draw(
            client,
            {
                migrated: "migrated from Neptune (lr 0.01)",
                run.info.run_id: "new run, losslab's NeptuneCallback (lr 0.003)",
            },
        )


def draw(client: MlflowClient, runs: dict[str, str]) -> None:
    fig, axes = plt.subplots(1, len(KEYS), figsize=(10, 3.8), layout="constrained")
    for ax, key in zip(axes, KEYS, strict=True):
        for (run_id, name), style in zip(runs.items(), ("o-", "s--"), strict=True):
            history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
            ax.plot(*zip(*history, strict=True), style, ms=3, label=name)
        ax.set(title=key, xlabel="step (epoch)", ylabel="loss")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.suptitle("One MLflow store, Neptune's keys: a migrated history and a new run")
    fig.savefig(OUT, dpi=100)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
