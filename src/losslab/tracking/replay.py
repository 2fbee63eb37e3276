"""Write a spilled run into MLflow once its store is back.

``losslab replay FOLDER`` (or ``losslab-replay FOLDER``): FOLDER is the ``mlflow_spill``
folder a run wrote next to its Hydra output when the tracking store stayed unreachable (see
:mod:`losslab.tracking.spill`). The run, its metric points, params, tags, artifacts, model
and final status end up as if the store had never gone away: a run the store never saw is
created; a run another process ended as dead while it was spilling gets its true status
back, without that verdict.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from losslab.tracking import tag_keys
from losslab.tracking.redact import MASK, redact_text
from losslab.tracking.spill import RECORDS, REPLAYED, SpillError, read
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


def _params(client, run_id: str, folder: Path, item: dict, uri: str) -> tuple[str, int]:
    entries = [Param(k, v) for k, v in item["params"].items()]
    log_in_batches(client, run_id, params=entries)
    return "params", len(entries)


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

    from losslab.tracking.model import load_inference_model, log_keras_model

    experiment = client.get_run(run_id).info.experiment_id
    logged = f"source_run_id = '{run_id}'"
    if client.search_logged_models(experiment_ids=[experiment], filter_string=logged):
        return "models", 0  # logged by a replay that stopped before noting it
    model = load_inference_model(str(folder / item["file"]))
    if "encoding" not in item:
        log_keras_model(uri, run_id, experiment, model, np.load(folder / item["example"]))
        return "models", 1
    import pandas as pd

    encoding = json.loads((folder / item["encoding"]).read_text())
    example = pd.read_parquet(folder / item["example"])
    log_keras_model(uri, run_id, experiment, model, example, encoding)
    return "models", 1


def _status(client, run_id: str, folder: Path, item: dict, uri: str) -> tuple[str, int]:
    client.set_terminated(run_id, item["status"])
    return f"status {item['status']}", 1


WRITERS = {
    "metrics": _metrics,
    "params": _params,
    "tags": _tags,
    "artifact": _artifact,
    "model": _model,
    "status": _status,
}


PROGRESS = "spill.progress"


class Progress:
    """``spill.progress``: the run a replay created, and each record it finished."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / PROGRESS
        self.run_id: str | None = None
        self.done: set[int] = set()
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                note = json.loads(line)
                self.run_id = note.get("run_id", self.run_id)
                self.done.update([note["done"]] if "done" in note else [])

    def note(self, **what: object) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(what) + "\n")


def _create(client: MlflowClient, create: dict) -> str:
    from losslab.tracking.run import experiment_id

    exp = experiment_id(client, create["experiment"], create.get("artifact_location"))
    tags = create["tags"]
    name = tags.get("mlflow.runName")
    run = client.create_run(exp, start_time=create["start_time"], tags=tags, run_name=name)
    return run.info.run_id


def _clear_dead_verdict(client: MlflowClient, run_id: str, items: list[dict]) -> bool:
    """Remove the tags another process set when it took the spilling run for a dead one."""
    tags = client.get_run(run_id).data.tags
    verdict = tags.get(tag_keys.ENDED_AS_DEAD)
    if verdict is None:
        return False
    client.delete_tag(run_id, tag_keys.ENDED_AS_DEAD)
    own_error = any(tag_keys.ERROR in i.get("tags", {}) for i in items if i["kind"] == "tags")
    if tags.get(tag_keys.ERROR) == verdict and not own_error:
        client.delete_tag(run_id, tag_keys.ERROR)
    return True


def _run_id(client: MlflowClient, header: dict, progress: Progress) -> str:
    if progress.run_id is not None:
        return progress.run_id
    if "create" not in header:
        return header["run_id"]
    run_id = _create(client, header["create"])
    progress.note(run_id=run_id)
    return run_id


def target(folder: str | Path, uri: str | None = None) -> tuple[str, str]:
    """The store a replay writes into (``uri``, else the one the spill names) and a line that
    says so, naming the spill's own store when another was chosen: a header edited to point
    elsewhere is shown before anything is written, never followed in silence."""
    header = read(folder).header
    own = header["uri"]
    if uri is None:
        return own, f"writing into {own} (the store the run used; --tracking-uri chooses another)"
    if uri == own:
        return uri, f"writing into {redact_text(uri)}"
    return uri, f"writing into {redact_text(uri)} (the run was made against {own})"


def replay(
    folder: str | Path,
    uri: str | None = None,
    strict: bool = False,
    warn: Callable[[str], None] = log.warning,
) -> tuple[str, dict[str, int]]:
    """Write the spill in ``folder`` to its run; the run's id and what was written, by kind.
    Every line is checked first (:func:`losslab.tracking.spill.read`): lines that fail are
    left out and each named to ``warn``, or with ``strict`` nothing is written."""
    folder = Path(folder)
    spilled = read(folder, strict)
    for number, why in spilled.skipped:
        warn(f"{folder / RECORDS} line {number} left out: {why}")
    header = spilled.header
    uri = uri or header["uri"]
    if MASK in uri:
        raise ValueError(
            f"the spill's tracking URI {uri!r} had a secret, which was not stored; "
            "pass the full URI with --tracking-uri"
        )
    client = MlflowClient(uri)
    progress = Progress(folder)
    run_id = _run_id(client, header, progress)
    counts: dict[str, int] = defaultdict(int)
    for number, item in spilled.items:
        if number in progress.done:
            continue
        what, n = WRITERS[item["kind"]](client, run_id, folder, item, uri)
        counts[what] += n
        progress.note(done=number)
    if spilled.skipped:
        counts["lines left out"] = len(spilled.skipped)
    if _clear_dead_verdict(client, run_id, [item for _, item in spilled.items]):
        counts["dead-run verdicts cleared"] += 1
    (folder / RECORDS).rename(folder / REPLAYED)
    return run_id, dict(counts)


def main(argv: list[str] | None = None, prog: str = "losslab-replay") -> int:
    """``losslab-replay`` (or ``losslab replay``, named by ``prog``)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="the mlflow_spill folder of a run")
    parser.add_argument("--tracking-uri", help="store to write to (default: the run's own)")
    parser.add_argument(
        "--strict", action="store_true", help="refuse the whole spill if any line is malformed"
    )
    args = parser.parse_args(argv)
    try:
        uri, where = target(args.folder, args.tracking_uri)
        print(where)
        run_id, counts = replay(args.folder, uri, args.strict, warn=_to_stderr(prog))
    except (SpillError, ValueError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    done = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    print(f"replayed into run {run_id}: {done}")
    return 0


def _to_stderr(prog: str) -> Callable[[str], None]:
    return lambda text: print(f"{prog}: {text}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
