"""Whether a tracking store answers, asked with a short timeout before any data is loaded.

MLflow's client retries a server that does not answer for minutes (its
``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` backoff, about 250 s by default) and then raises a long
chain of urllib3 errors; a run that meets that after loading its data has wasted the wait.
One ``/health`` request with a timeout of a few seconds (a server's health endpoint needs no
credentials) tells the same thing at once. A SQLite store's folder must be writable; other
stores are opened in a thread that is given the same few seconds.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

from losslab.config import ConfigError
from losslab.extras import missing_driver
from losslab.tracking.redact import redact_text

PROBE_TIMEOUT_S = 5.0
RETRY_EVERY_S = 2.0


class StoreUnreachable(ConfigError):
    """The tracking store did not answer; the message names the URI and the fix.

    ``infrastructure``: the failure is the store's, not the configuration's (a sweeper reads
    it to queue the trial again instead of counting its params as failed)."""

    infrastructure = True


def is_server(uri: str) -> bool:
    return urlsplit(uri).scheme in ("http", "https")


def _server_error(uri: str, timeout_s: float) -> str | None:
    try:
        answer = requests.get(f"{uri.rstrip('/')}/health", timeout=timeout_s)
    except requests.exceptions.Timeout:
        return f"no answer within {timeout_s:g}s"
    except requests.exceptions.RequestException as err:
        return f"no MLflow server answers ({_reason(err)})"
    if answer.status_code >= 500:
        return f"the server answers HTTP {answer.status_code} to /health"
    return None


def _reason(err: BaseException) -> str:
    text = str(err)
    for known in ("Connection refused", "Name or service not known", "No route to host"):
        if known in text:
            return known
    return type(err).__name__


def _open_store(uri: str) -> None:
    from mlflow import MlflowClient

    MlflowClient(uri).search_experiments(max_results=1)


def _first_line(uri: str, err: Exception) -> str:
    """MLflow's reason, short: an unknown scheme is named with the ones MLflow takes."""
    text = str(err).strip()
    schemes = re.search(r"Supported URI schemes are: (\[[^\]]*\])", text)
    if schemes:
        return f"unsupported scheme {urlsplit(uri).scheme!r}; MLflow takes {schemes.group(1)}"
    return (text.splitlines() or [type(err).__name__])[0][:300]


def _store_error(uri: str, timeout_s: float) -> str | None:
    """Open a database or file store in a thread, so a hung database cannot hold the run."""
    failure: list[str] = []

    def attempt() -> None:
        try:
            _open_store(uri)
        except ImportError as err:  # a database driver: say which extra installs it
            failure.append(missing_driver(uri, err) if err.name else _first_line(uri, err))
        except Exception as err:  # any reason the store cannot be used
            failure.append(_first_line(uri, err))

    thread = threading.Thread(target=attempt, name="mlflow-store-check", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return f"the store did not open within {timeout_s:g}s"
    return failure[0] if failure else None


def _sqlite_error(path: Path) -> str | None:
    """A SQLite store is a file this process can create or open; made by its first run (a
    refused command leaves no empty store behind)."""
    if path.is_dir():
        return f"{path} is a folder, not a SQLite file"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return f"cannot create {path.parent} ({err.strerror})"
    target = path if path.exists() else path.parent
    if not os.access(target, os.W_OK):
        return f"{target} is not writable"
    return not_mlflows(path)


def not_mlflows(path: Path) -> str | None:
    """Why an existing, non-empty SQLite store file is not one MLflow may write to."""
    return _foreign_file(path) if path.is_file() and path.stat().st_size else None


MLFLOW_TABLES = {"alembic_version", "experiments", "runs", "metrics", "params", "tags"}


def _foreign_file(path: Path) -> str | None:
    """Why an existing file cannot be MLflow's store: not SQLite, corrupt, or another
    application's database (MLflow would add its tables to it, or alter a table of the same
    name). Asked read-only, so a refused file is left exactly as it was."""
    import sqlite3

    with path.open("rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            return f"{path} is not a SQLite database; give tracking.uri another file"
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
            db.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as err:
        return f"{path} is a damaged SQLite database ({err}); give tracking.uri another file"
    tables = {name for (name,) in rows}
    if not tables or tables >= MLFLOW_TABLES:
        return None
    shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
    return (
        f"{path} is another application's SQLite database (tables: {shown}), not an MLflow "
        "store; MLflow would add its tables to it. Give tracking.uri a file of its own"
    )


def store_error(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the store at ``uri`` cannot be used now, or None when it answers."""
    from losslab.tracking.store import sqlite_path

    if is_server(uri):
        return _server_error(uri, timeout_s)
    path = sqlite_path(uri)
    if path is not None:
        return _sqlite_error(path)
    return _store_error(uri, timeout_s)


def check_usable(
    uri: str, artifact_location: str | None, if_unreachable: str, wait_s: float = 0.0
) -> str | None:
    """The store a run or sweep is about to use, asked before any data is loaded: None when
    it answers; why not when ``if_unreachable`` is ``offline`` (the run starts spilling);
    else :class:`StoreUnreachable` naming the URI and the fixes. The one place a command
    decides on its store (a single run, and a sweep's preflight). ``wait_s``: how long a
    store that does not answer is asked again (a sweep's job waits out an outage between
    trials as a run waits one out inside its trial)."""
    from losslab.tracking.store import sqlite_path

    check_artifact_location(artifact_location)
    path = sqlite_path(uri)
    foreign = not_mlflows(path) if path is not None else None
    if foreign is not None:  # not a store that is away: spilling for it would not help
        raise ConfigError(f"tracking.uri={redact_text(uri)}: {foreign}")
    why = store_error(uri)
    deadline = time.monotonic() + wait_s
    while why is not None and time.monotonic() < deadline:
        time.sleep(min(RETRY_EVERY_S, max(deadline - time.monotonic(), 0.0)))
        why = store_error(uri)
    if why is None or if_unreachable == "offline":
        return why
    raise unreachable_error(uri, why)


def answers(uri: str, timeout_s: float = 2.0) -> bool:
    """Whether a server answers now (a file or database store is taken to be there)."""
    return not is_server(uri) or _server_error(uri, timeout_s) is None


def unreachable_error(uri: str, why: str) -> StoreUnreachable:
    """The one-line error for a store that does not answer: the URI, why, and the fixes."""
    start = ""
    if is_server(uri):
        port = urlsplit(uri).port or 5000
        start = f"start it (mlflow server --host 127.0.0.1 --port {port}), "
    return StoreUnreachable(
        f"tracking.uri={redact_text(uri)}: {why}; {start}correct tracking.uri, use "
        "tracking=none, or set tracking.if_unreachable=offline to record into a spill folder "
        "and replay it later"
    )


def check_artifact_location(location: str | None) -> None:
    """A local ``tracking.artifact_location`` must be a folder this process can create."""
    if location is None or urlsplit(location).scheme not in ("", "file"):
        return
    path = Path(urlsplit(location).path if location.startswith("file:") else location)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"tracking.artifact_location={location}: cannot create it ({err.strerror}); "
            "give a writable folder or an artifact store URI (s3://, gs://, ...)"
        ) from None
