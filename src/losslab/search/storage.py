"""Opening an Optuna storage from one string, the same way in the sweeper and in its jobs.

``sqlite:///...``, ``postgresql+psycopg://...`` and any other SQLAlchemy URL give an
``RDBStorage``; ``journal:<path>`` gives a ``JournalStorage`` on a file, for shared file
systems without a database server. SQLite waits for a busy lock instead of failing, so several
processes on one machine can share a study file.
"""

from __future__ import annotations

import contextlib
import fcntl
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna

JOURNAL_PREFIX = "journal:"
SQLITE_BUSY_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 5
DEFAULT_FILE = "optuna.db"
ADVISORY_KEY = 0x10551AB  # PostgreSQL advisory lock of creation_lock
# connections to a database server per opened storage: one for the thread that asks, tells
# or reports, one for the heartbeat thread, two more at a burst (SQLAlchemy's default is 5 +
# 10). A sweep's worker opens two (its own; its trial's job's), so a server needs
# max_connections >= 8 per worker, plus 4 for the sweep command (README: Sweeps on a cluster)
POOL = {"pool_size": 2, "max_overflow": 2}


def default_url(sweep_dir: str | Path) -> str:
    """A SQLite file in the sweep folder."""
    path = Path(sweep_dir).absolute() / DEFAULT_FILE
    return f"sqlite:///{path}"


def check_url(url: str) -> None:
    """Fail before any trial runs on a string that names no storage."""
    if url.startswith(JOURNAL_PREFIX):
        if not url[len(JOURNAL_PREFIX) :].strip():
            raise ValueError(f"storage={url!r} names no file; write journal:/path/to/study.log")
        return
    if "://" not in url:
        raise ValueError(
            f"storage={url!r} is not a storage: use a SQLAlchemy URL (sqlite:///study.db, "
            "postgresql+psycopg://user@host/db) or journal:/path/to/study.log"
        )


def check_shared(url: str | None) -> None:
    """Refuse a file storage for a study that processes on several nodes share.

    SQLite and a journal file rely on file locks, which Optuna's documentation warns are
    unsafe on NFS, the file system Slurm nodes share: trials could be lost or counted twice.
    ``None``: the default SQLite file in the sweep folder. Raises ``ValueError`` naming the
    storage.
    """
    if url is None:
        shown = "null (a SQLite file in the sweep folder)"
    elif url.startswith(("sqlite:", JOURNAL_PREFIX)):
        shown = url
    else:
        return
    raise ValueError(
        f"storage={shown}: workers on several nodes cannot share a SQLite or journal file "
        "(file locks are unsafe across NFS, Optuna's docs say); give a database server, "
        "e.g. postgresql+psycopg://user@host/optuna"
    )


def _connect_timeout(url: str) -> dict:
    """A server that does not answer fails a connection in seconds, not the OS's minutes."""
    if url.startswith(("postgresql", "mysql")):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    return {}


def open_storage(
    url: str, heartbeat_s: int | None = None, grace_s: int | None = None, max_retry: int = 0
) -> optuna.storages.BaseStorage:
    """The storage at ``url``; for RDB storages with ``heartbeat_s``, trials whose heartbeat
    stopped for ``grace_s`` (default twice the interval) can be failed, and retried up to
    ``max_retry`` times with the same parameters."""
    check_url(url)
    if url.startswith(JOURNAL_PREFIX):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url[len(JOURNAL_PREFIX) :]).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs: dict = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    else:  # a database server: a pooled connection a restart closed is replaced, not used
        engine_kwargs = {"pool_pre_ping": True, **POOL, **_connect_timeout(url)}
    heartbeat: dict = {}
    if heartbeat_s:
        heartbeat = {"heartbeat_interval": heartbeat_s, "grace_period": grace_s}
        if max_retry > 0:
            heartbeat["heartbeat_stale_trial_callback"] = (
                optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
            )
    with warnings.catch_warnings():  # heartbeats have been experimental since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)


@contextlib.contextmanager
def creation_lock(storage: optuna.storages.BaseStorage) -> Iterator[None]:
    """Held by one process at a time among those sharing ``storage``, so something made once
    per study (an MLflow parent run) is made once: an exclusive lock on a file beside a SQLite
    or journal file, a session advisory lock on PostgreSQL; an in-memory storage, or another
    server, has one process (or none to lock) and holds nothing."""
    backend = getattr(storage, "_backend", storage)  # RDBStorage inside Optuna's cache
    url = getattr(backend, "url", "") or ""
    path = getattr(backend, "_file_path", None)  # JournalStorage's file backend
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
    if path:
        with open(f"{path}.losslab.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    elif url.startswith("postgresql"):
        with _advisory_lock(backend.engine):
            yield
    else:
        yield


@contextlib.contextmanager
def _advisory_lock(engine) -> Iterator[None]:
    from sqlalchemy import text

    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_KEY})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
