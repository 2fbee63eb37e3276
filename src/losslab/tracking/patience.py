"""How long a run waits for a tracking store that stopped answering: the project decides.

MLflow's client retries on its own schedule (7 retries with a doubling backoff, 120 s per
request by default), so one call to a server that went away can take about 250 s to fail,
whatever ``tracking.offline_after_s`` says. :class:`Patience` runs each call in a helper
thread and stops waiting once the store has failed or kept the call unanswered for the
allowed time; a call that is merely slow (a large model upload) is told apart by asking the
server's ``/health``. A call given up on may still land later: everything it records is
also spilled, and replay skips what the store already holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import requests

from losslab.tracking import reachable

T = TypeVar("T")

POLL_S = 0.2
RETRY_S = 1.0
INTERRUPTED_S = 3.0  # after Ctrl-C, the store gets this long before the rest is spilled


class StoreAway(Exception):
    """The store did not answer within the run's patience; the message says how."""


def unreachable(err: BaseException) -> bool:
    """Whether ``err`` says the tracking store could not be reached (not a bad request)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return True
        text = str(seen)
        if any(s in text for s in ("Max retries exceeded", "Connection refused", "error respon")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Patience:
    """The wait a run grants its store: ``after_s`` from the first failure or stall (None:
    as long as MLflow's own retries take), a few seconds once interrupted, none once
    ``hurry`` is set (a second Ctrl-C)."""

    def __init__(self, uri: str, after_s: float | None) -> None:
        self.uri = uri
        self.after_s = after_s
        self.hurry = threading.Event()
        self.interrupted = False
        self.away_since: float | None = None  # monotonic; cleared by a call that succeeds

    @property
    def limit_s(self) -> float | None:
        if self.after_s is None:
            return INTERRUPTED_S if self.interrupted else None
        return min(self.after_s, INTERRUPTED_S) if self.interrupted else self.after_s

    def due(self, since: float | None) -> bool:
        """Whether waiting on a store that stalled or failed at ``since`` should stop."""
        limit = self.limit_s
        if self.hurry.is_set():
            return True
        return limit is not None and since is not None and time.monotonic() - since > limit

    def why(self) -> str:
        if self.hurry.is_set():
            return "not waited for after a second Ctrl-C"
        return f"did not answer for {self.limit_s:g}s"

    def still_there(self) -> bool:
        """A call overdue only because it is slow: the server still answers its health check."""
        return not (self.interrupted or self.hurry.is_set()) and reachable.answers(self.uri)

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``; raises :class:`StoreAway` once the store is overdue. Errors that mean the
        store could not be reached are retried until then; any other error is raised."""
        if self.limit_s is None:
            return fn()
        while True:
            began = time.monotonic()
            done, box = _start(fn)
            while not done.wait(POLL_S):
                if not self.due(min(began, self.away_since or began)):
                    continue
                if not self.still_there():
                    raise StoreAway(self.why())
                began, self.away_since = time.monotonic(), None
            if "error" not in box:
                self.away_since = None
                return box["value"]  # type: ignore[return-value]
            err = box["error"]
            if not isinstance(err, Exception) or not unreachable(err):
                raise err
            self.away_since = self.away_since or began
            self._nap(err)

    def _nap(self, err: Exception) -> None:
        """Wait before the next try, unless the store is overdue by then."""
        deadline = time.monotonic() + RETRY_S
        while time.monotonic() < deadline:
            if self.due(self.away_since):
                raise StoreAway(f"{self.why()} ({type(err).__name__})") from err
            self.hurry.wait(POLL_S)


def _start(fn: Callable[[], T]) -> tuple[threading.Event, dict[str, object]]:
    """Run ``fn`` in a daemon thread (one stuck in MLflow's retries must not hold the
    process at exit); the event is set once ``box`` holds its value or error."""
    done, box = threading.Event(), {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # handed to the caller's thread
            box["error"] = err
        finally:
            done.set()

    threading.Thread(target=target, name="mlflow-call", daemon=True).start()
    return done, box
