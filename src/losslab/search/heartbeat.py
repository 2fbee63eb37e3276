"""Heartbeats for trials run by other processes, so a killed job's trial ends FAIL; and the
same retry for a job its scheduler reports ended without a result.

Optuna's own heartbeat thread only runs inside ``study.optimize``; a Hydra sweep asks and
tells instead, and its trials run in jobs elsewhere. So the sweeper beats for the trials of
the batch it is waiting on, and each job beats for its own trial while it trains. When both
stop (SIGKILL, a lost node), the trial's heartbeat goes stale and the next sweep against the
study ends it FAIL through ``optuna.storages.fail_stale_trials``, which also calls the
storage's retry callback. Only RDB storages (SQLite, PostgreSQL, ...) keep heartbeats.

A launcher that hears from the scheduler that a job ended without returning (cancelled,
killed, its node lost, past its time limit) says so at once with :class:`JobLost`: the sweeper
ends the trial FAIL and queues it again through the same callback (:func:`retry`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import optuna

log = logging.getLogger(__name__)


def _is_rdb(storage: optuna.storages.BaseStorage) -> bool:
    return callable(getattr(storage, "record_heartbeat", None))


class Heartbeat:
    """A daemon thread recording a heartbeat for ``trial_ids`` every ``interval_s``."""

    def __init__(
        self, storage: optuna.storages.BaseStorage, trial_ids: Iterable[int], interval_s: float
    ) -> None:
        self.storage = storage
        self.trial_ids = list(trial_ids)
        self.interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="optuna-heartbeat", daemon=True)

    def _beat(self) -> None:
        for trial_id in self.trial_ids:
            try:
                self.storage.record_heartbeat(trial_id)
            except Exception as err:  # the storage is busy or away: beat again next time
                log.debug("heartbeat for trial %d failed: %s", trial_id, err)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()

    def __enter__(self) -> Heartbeat:
        if _is_rdb(self.storage) and self.trial_ids:
            self._beat()
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


class JobLost(RuntimeError):
    """The scheduler ended a job before it returned a result; a launcher returns it as the
    job's error, so its trial alone fails (and is retried up to ``max_retry``)."""


def retry(storage: optuna.storages.BaseStorage, study: optuna.Study, trial_id: int) -> None:
    """Queue a lost job's trial again with the same params, as the storage's stale-trial
    callback (``max_retry``) does for a trial whose heartbeat stopped; nothing without one."""
    callback = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
    if callback is not None:
        callback(study, storage.get_trial(trial_id))
