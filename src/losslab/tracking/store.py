"""A tracking store that is ready before several processes use it at once.

MLflow creates (and migrates) a SQLite store's tables the first time a process opens it; two
processes opening a new ``mlflow.db`` together (two sweep workers, parallel jobs) both run the
migrations and one fails ("table _alembic_tmp_metrics already exists"). Opening the store once
under an exclusive file lock makes the first process create it and the others find it made.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from mlflow import MlflowClient
from mlflow.environment_variables import MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT

from losslab.tracking.redact import redact_text

SQLITE_PREFIX = "sqlite:///"
_ready: set[str] = set()


def default_uri(root: str | Path) -> str:
    """What ``tracking=local`` records into when started in ``root``: ``$MLFLOW_TRACKING_URI``,
    else ``root/mlflow.db`` (``conf/tracking/local.yaml``); for tools reading those
    runs back."""
    path = Path(root).absolute() / "mlflow.db"
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{path}"


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith(SQLITE_PREFIX):
        return None
    return Path(uri[len(SQLITE_PREFIX) :].split("?", 1)[0])


def ensure_ready(uri: str) -> None:
    """Create a SQLite store's tables under a lock; other stores need nothing."""
    path = sqlite_path(uri)
    if path is None or uri in _ready:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            MlflowClient(uri).search_experiments(max_results=1)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    _ready.add(uri)


def keep_credentials_off_stdout(uri: str) -> None:
    """MLflow prints "View run <name> at: <uri>/#/..." when a run on a server ends, the
    password of a ``user:password@`` URI included; with one, that line is turned off (the
    project prints its own link, masked)."""
    if redact_text(uri) != uri:
        os.environ[MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name] = "true"
