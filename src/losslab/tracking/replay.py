"""``losslab-replay FOLDER``: write a spilled run into MLflow once its store is back.

FOLDER is the ``mlflow_spill`` folder a run wrote next to its Hydra output when the tracking
store stayed unreachable (see :mod:`losslab.tracking.spill`). The run, its metric points,
tags, artifacts, model and final status end up as if the store had never gone away.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import defaultdict
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric

from losslab.tracking.redact import MASK
from losslab.tracking.spill import RECORDS, REPLAYED, records
from losslab.tracking.writer import log_in_batches

log = logging.getLogger(__name__)


def _new_points(client: MlflowClient, run_id: str, rows: list[list]) -> list[Metric]:
    """The spilled points the store does not hold yet."""
    by_key: dict[str, list[Metric]] = defaultdict(list)
    for key, value, ts, step in rows:
        by_key[key].append(Metric(key, float(value), int(ts), int(step)))
    fresh: list[Metric] = []
    for key, points in by_key.items():
        stored = {(m.step, m.timestamp) for m in client.get_metric_history(run_id, key)}
        fresh.extend(m for m in points if (m.step, m.timestamp) not in stored)
    return fresh


def _metrics(client, run_id: str, folder: Path, item: dict, uri: str) -> tuple[str, int]:
    fresh = _new_points(client, run_id, item["points"])
    log_in_batches(client, run_id, metrics=fresh)
    return "metric points", len(fresh)


def _tags(client, run_id: str, folder: Path, item: dict, uri: str) -> tuple[str, int]:
    for key, value in item["tags"].items():
        client.set_tag(run_id, key, value)
    return "tags", len(item["tags"])


def _artifact(client, run_id: str, folder: Path, item: dict, uri: str) -> tuple[str, int]:
    path = folder / item["file"]
    if path.is_dir():
        client.log_artifacts(run_id, str(path), item["artifact_path"])
    else:
        client.log_artifact(run_id, str(path), item["artifact_path"])
    return "artifacts", 1


def _model(client, run_id: str, folder: Path, item: dict, uri: str) -> tuple[str, int]:
    import numpy as np

    from losslab.tracking.model import load_keras_model, log_keras_model

    model = load_keras_model(str(folder / item["file"]), compile=False)
    experiment = client.get_run(run_id).info.experiment_id
    log_keras_model(uri, run_id, experiment, model, np.load(folder / item["example"]))
    return "models", 1


def _status(client, run_id: str, folder: Path, item: dict, uri: str) -> tuple[str, int]:
    client.set_terminated(run_id, item["status"])
    return f"status {item['status']}", 1


WRITERS = {
    "metrics": _metrics,
    "tags": _tags,
    "artifact": _artifact,
    "model": _model,
    "status": _status,
}


def replay(folder: str | Path, uri: str | None = None) -> dict[str, int]:
    """Write the spill in ``folder`` to its run; counts of what was written, by kind."""
    folder = Path(folder)
    items = list(records(folder))
    header = items[0]
    uri = uri or header["uri"]
    if MASK in uri:
        raise ValueError(
            f"the spill's tracking URI {uri!r} had a secret, which was not stored; "
            "pass the full URI with --tracking-uri"
        )
    client = MlflowClient(uri)
    counts: dict[str, int] = defaultdict(int)
    for item in items[1:]:
        what, n = WRITERS[item["kind"]](client, header["run_id"], folder, item, uri)
        counts[what] += n
    (folder / RECORDS).rename(folder / REPLAYED)
    return dict(counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="losslab-replay", description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="the mlflow_spill folder of a run")
    parser.add_argument("--tracking-uri", help="store to write to (default: the run's own)")
    args = parser.parse_args(argv)
    try:
        counts = replay(args.folder, args.tracking_uri)
    except (FileNotFoundError, ValueError) as err:
        print(f"losslab-replay: {err}", file=sys.stderr)
        return 2
    print("replayed " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
