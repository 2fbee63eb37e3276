"""Compare the runs of a study: a table, overlaid curves and an HTML page.

    losslab compare --experiment mnist_9v4        # its newest multirun
    losslab compare --parent-run RUN_ID           # one multirun or sweep
        [--out outputs/compare/NAME] [--tracking-uri URI] [--no-log]

Reads the runs back through MLflow's client (``tracking=local``'s ``./mlflow.db`` unless
``--tracking-uri`` or ``$MLFLOW_TRACKING_URI`` says otherwise), prints the table, writes
``comparison.md``, ``comparison.csv``, ``comparison.html`` and the PNGs to ``--out``, and logs
them to the parent run under ``comparison/``. MLflow and matplotlib are imported once the
arguments are read, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse_args(argv: list[str] | None, prog: str | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--experiment", help="MLflow experiment (an experiment's task_name)")
    which.add_argument("--parent-run", help="id of a multirun's or sweep's parent run")
    p.add_argument("--out", help="output folder (default outputs/compare/<name>)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default ./mlflow.db)")
    p.add_argument("--no-log", action="store_true", help="do not log to the parent run")
    return p.parse_args(argv)


def _check_store(uri: str) -> None:
    """A comparison reads runs: a SQLite store that does not exist is a wrong folder or URI,
    not a store to create (MLflow's client would make an empty one); any store must answer."""
    from losslab.compare import CompareError
    from losslab.tracking.reachable import store_error
    from losslab.tracking.store import sqlite_path

    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        raise CompareError(
            f"no MLflow store at {path}: run it in the folder you trained in, or give "
            "--tracking-uri"
        )
    why = store_error(uri)
    if why is not None:
        raise CompareError(f"tracking URI {uri}: {why}")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Compare as ``argv`` asks; 2 when there is nothing to compare."""
    args = parse_args(argv, prog)
    # MLflow draws one download bar per artifact read back: a dozen per run
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    from losslab.compare import CompareError, compare
    from losslab.compare_report import terminal
    from losslab.tracking.store import default_uri

    uri = args.tracking_uri or default_uri(Path.cwd())
    out = Path(args.out or Path("outputs") / "compare" / (args.experiment or args.parent_run))
    try:
        _check_store(uri)
        result = compare(uri, out, args.experiment, args.parent_run, not args.no_log)
    except CompareError as err:
        print(f"compare: {err}", file=sys.stderr)
        return 2
    print(terminal(result))
    where = f"\nwritten to {out.resolve()}"
    if result.parent_run_id and not args.no_log:
        where += f"; logged to run {result.parent_run_id}"
    print(where)
    return 0
