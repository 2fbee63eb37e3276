"""One sweep command per sweep folder at a time.

A sweep folder holds what one command shares with its jobs: the parent run's id, the jobs'
folders numbered from 0, ``multirun.yaml``, and (by default) the study. A second command in
the same folder would nest its jobs under the other's parent and overwrite its job folders.
Hydra gives each multirun a folder of its own (a timestamp); an Optuna preset's folder is
stable on purpose, so that the same command later resumes its study. So the second command
is refused, as ``flock -n`` refuses a second cron firing, with the fix for running both:
its own ``hydra.sweep.dir`` (workers sharing a study each have one). The lock is the
kernel's (``flock``), so a command that dies, even by SIGKILL, leaves none behind.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from typing import IO

from losslab.config import ConfigError

LOCK_FILE = ".sweep.lock"

_held: dict[Path, IO[str]] = {}  # folders this process holds, kept open while it runs


def claim(sweep_dir: str | Path) -> None:
    """Hold ``sweep_dir`` for this process; :class:`ConfigError` naming the command that
    holds it."""
    folder = Path(sweep_dir).absolute()
    if folder in _held:
        return
    lock = (folder / LOCK_FILE).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise ConfigError(
            f"hydra.sweep.dir={sweep_dir}: another sweep command ({holder}) is running in this "
            "folder; wait for it to end, or give this command its own hydra.sweep.dir "
            "(it can share the study: hydra.sweeper.storage, hydra.sweeper.study_name)"
        ) from None
    lock.truncate(0)
    lock.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    lock.flush()
    _held[folder] = lock


def release(sweep_dir: str | Path) -> None:
    lock = _held.pop(Path(sweep_dir).absolute(), None)
    if lock is not None:
        lock.close()  # closing the file releases the lock
