"""A full disk told as one: which path, how much room is left, and where else to write.

A full filesystem reaches a run three ways: the SQLite store answers "database or disk is
full" (and MLflow logs a traceback for every such call), the spill folder and the job's
output folder raise ``OSError(ENOSPC)``. Each is told once in a line naming the path and the
free space; the spill then moves to a folder on another filesystem (:func:`elsewhere`).
"""

from __future__ import annotations

import errno
import logging
import shutil
import tempfile
from pathlib import Path

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
SQLITE_FULL = "database or disk is full"
ELSEWHERE = "losslab-spill"  # under the system's temporary folder ($TMPDIR)


class DiskFull(OSError):
    """A write that found its filesystem full; the message names the path and the room left.

    ``infrastructure``: the failure is the machine's, not the trial's params (a sweeper
    queues the trial again instead of counting it as failed)."""

    infrastructure = True

    def __init__(self, path: str | Path) -> None:
        super().__init__(errno.ENOSPC, describe(path))
        self.path = Path(path)

    def __str__(self) -> str:
        return self.strerror


def is_full(err: BaseException | None) -> bool:
    """Whether ``err`` (or what caused it) says the disk is full."""
    seen = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in FULL_ERRNOS:
            return True
        if SQLITE_FULL in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the filesystem of ``path`` (its nearest existing folder)."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _size(n: int | None) -> str:
    if n is None:
        return "unknown space"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover - the loop returns


def describe(path: str | Path) -> str:
    """``disk full: <path> (<free> free)``."""
    return f"disk full: {path} ({_size(free_bytes(path))} free)"


def elsewhere(run_id: str) -> Path:
    """Where a spill goes when its own folder's disk is full: the temporary folder
    (``$TMPDIR``, else ``/tmp``), usually another filesystem."""
    return Path(tempfile.gettempdir()) / ELSEWHERE / run_id


class LogFile(logging.FileHandler):
    """The job's log file (Hydra's ``job_logging`` file handler): on a full disk, one line
    naming it and the room left, then no more writes to it, instead of logging's traceback
    for every record."""

    full = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        import sys

        err = sys.exc_info()[1]
        if not is_full(err):
            super().handleError(record)
            return
        if not self.full:
            self.full = True
            print(
                f"{describe(self.baseFilename)}; the job's log goes on the terminal only",
                file=sys.stderr,
            )

    def emit(self, record: logging.LogRecord) -> None:
        if not self.full:
            super().emit(record)


class QuietWhenFull(logging.Filter):
    """Drops MLflow's traceback for a store call that failed on a full disk: the run says it
    once in one line, and the call is retried."""

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        return not is_full(err)


def quiet_mlflow_when_full() -> None:
    logger = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, QuietWhenFull) for f in logger.filters):
        logger.addFilter(QuietWhenFull())


def store_full(uri: str) -> str:
    """The full disk of a store: its SQLite file named, a server's by its URI."""
    from losslab.tracking.redact import redact_text
    from losslab.tracking.store import sqlite_path

    path = sqlite_path(uri)
    return describe(path) if path is not None else f"{redact_text(uri)}: its disk is full"
