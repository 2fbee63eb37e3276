"""A background writer that batches metric points into ``MlflowClient.log_batch`` calls.

Training threads only append a row to a deque; one daemon thread turns rows into
``Metric`` entities and sends at most ``MAX_METRICS_PER_BATCH`` per request, so a slow or
unreachable tracking store never stalls a training step. ``flush(wait=True)`` returns once
every row added before it is stored.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

from mlflow.entities import Metric, Param
from mlflow.utils.validation import MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

from losslab.tracking import disk

log = logging.getLogger(__name__)

# (step, timestamp in ms, {name: value}, a prefix for every name or a map name -> key)
Row = tuple[int, int, Mapping[str, float], "str | Mapping[str, str | None]"]


def log_in_batches(
    client, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = ()
) -> None:
    """``log_batch`` requests within MLflow's limits (1000 metrics, 100 params each)."""
    for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=list(metrics[i : i + MAX_METRICS_PER_BATCH]))
    for i in range(0, len(params), MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, params=list(params[i : i + MAX_PARAMS_TAGS_PER_BATCH]))


class MetricWriter:
    """Queue of ``(step, timestamp_ms, {key: value}, prefix)`` rows for one run."""

    def __init__(
        self,
        client,
        run_id: str,
        interval_s: float = 1.0,
        retry_s: float = 2.0,
        heartbeat: tuple[float, Callable[[], None]] | None = None,
    ):
        self._client = client
        self._run_id = run_id
        self._interval = interval_s
        self._retry = retry_s
        # (every_s, beat): called from the writer thread while the process lives
        self._heartbeat = heartbeat
        self._last_beat = 0.0
        self._lock = threading.Lock()  # guards _pending against abandon()
        self._abandoned = False
        self._sink: Callable[[list[Metric]], None] | None = None  # where rows go once abandoned
        self.unreachable_since: float | None = None  # monotonic time of the first failure
        self._sending_since: float | None = None  # monotonic start of the request in flight
        self._rows: deque[Row] = deque()
        self._pending: list[Metric] = []
        self._wake = threading.Condition()
        self._added = 0  # rows added
        self._done = 0  # rows whose metrics are all stored
        self._closing = False
        self._flush_asked = False
        self.points_written = 0
        self.last_error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="mlflow-metric-writer", daemon=True)
        self._thread.start()

    # -- producer side (training thread) ------------------------------------------------
    def add(
        self,
        step: int,
        values: Mapping[str, float],
        prefix: str | Mapping[str, str | None] = "",
        ts_ms: int | None = None,
    ):
        """Queue one row; cheap enough to call after every batch. ``prefix`` goes in front of
        each name, or maps each name to its key (None: not recorded; the writer thread reads
        it). Once abandoned, the row goes straight to the sink :meth:`abandon` was given."""
        row = (step, ts_ms or int(time.time() * 1000), values, prefix)
        with self._lock:  # not between abandon()'s drain and its sink
            if self._sink is None:
                self._rows.append(row)
                self._added += 1
                return
        self._sink(self._metrics([row]))

    def flush(self, wait: bool = False, timeout: float | None = None) -> bool:
        """Ask the writer to send now; with ``wait``, block until every queued row is stored.

        Returns whether everything queued so far is stored.
        """
        target = self._added
        with self._wake:
            self._flush_asked = True
            self._wake.notify_all()
            if wait:
                self._wake.wait_for(
                    lambda: self._done >= target or self._abandoned, timeout=timeout
                )
            return self._done >= target

    @property
    def stalled_since(self) -> float | None:
        """Monotonic time since when the store has failed, or kept a request unanswered."""
        return self.unreachable_since or self._sending_since

    @property
    def failing(self) -> bool:
        """Whether the last request failed (rather than being slow to answer)."""
        return self.unreachable_since is not None

    def wait_stored(
        self,
        give_up_after_s: float | None = None,
        hurry: threading.Event | None = None,
        counted_from: float = 0.0,
        poll_s: float = 0.2,
    ) -> bool:
        """Block until every queued row is stored; False once the store has failed or stalled
        for more than ``give_up_after_s`` seconds (counted from ``counted_from`` at the
        earliest; None: wait as long as it takes), or at once when ``hurry`` is set."""
        target = self._added
        with self._wake:
            self._flush_asked = True
            self._wake.notify_all()
            while self._done < target:
                if self._abandoned or (hurry is not None and hurry.is_set()):
                    return False
                since = self.stalled_since
                if (
                    give_up_after_s is not None
                    and since is not None
                    and time.monotonic() - max(since, counted_from) > give_up_after_s
                ):
                    return False
                self._wake.wait(timeout=poll_s)
            return True

    def abandon(self, sink: Callable[[list[Metric]], None] | None = None) -> list[Metric]:
        """Stop sending and return every point not known to be stored; rows added later go
        to ``sink``.

        A request in flight when this is called may still land; replaying the spill skips
        points the store already has, so nothing is counted twice.
        """
        with self._wake, self._lock:
            self._sink = sink
            self._closing = self._abandoned = True
            unsent = list(self._pending)
            self._pending.clear()
            while self._rows:
                unsent.extend(self._metrics([self._rows.popleft()]))
            self._wake.notify_all()
        return unsent

    def close(self, timeout: float | None = None) -> bool:
        stored = self.flush(wait=True, timeout=timeout)
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        self._thread.join(timeout=1.0)
        return stored

    # -- consumer side (writer thread) -------------------------------------------------
    def _metrics(self, rows: Iterable[Row]) -> list[Metric]:
        """A row's keys: its prefix in front of each name, or each name's key in its map
        (None: not recorded)."""
        out = []
        for step, ts, values, keys in rows:
            for name, value in values.items():
                key = f"{keys}{name}" if isinstance(keys, str) else keys[name]
                if key is not None and isinstance(value, (int, float)):
                    out.append(Metric(key, float(value), ts, step))
        return out

    def _take(self) -> int:
        """Move queued rows into the pending list, up to one request's worth."""
        taken = 0
        with self._lock:
            while self._rows and len(self._pending) < MAX_METRICS_PER_BATCH:
                self._pending.extend(self._metrics([self._rows.popleft()]))
                taken += 1
        return taken

    def _send(self, everything: bool) -> bool:
        """Send full requests; with ``everything``, the remainder too. False on failure."""
        while len(self._pending) >= MAX_METRICS_PER_BATCH or (everything and self._pending):
            chunk = self._pending[:MAX_METRICS_PER_BATCH]
            self._sending_since = time.monotonic()
            try:
                self._client.log_batch(self._run_id, metrics=chunk, synchronous=True)
            except Exception as err:  # store unreachable or busy: keep the points, retry
                self._sending_since = None
                self.last_error = err
                if self.unreachable_since is None:  # told once an outage, on one line
                    self.unreachable_since = time.monotonic()
                    self._tell(err)
                with self._wake:
                    self._wake.notify_all()  # let wait_stored() check how long it has been
                return False
            self.unreachable_since = self._sending_since = None
            with self._lock:
                if self._abandoned:
                    return True
                del self._pending[: len(chunk)]
            self.points_written += len(chunk)
        return True

    def _tell(self, err: Exception) -> None:
        """The first failure of an outage, on one line: a full disk on stderr, as the run's
        other faults are told."""
        if disk.is_full(err):
            uri = str(getattr(self._client, "tracking_uri", ""))
            print(f"MLflow store {disk.store_full(uri)}; points kept in memory", file=sys.stderr)
            return
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        log.warning("MLflow log_batch failed (%s); points kept in memory, retried", first)

    def _beat(self) -> None:
        if self._heartbeat is None:
            return
        every, beat = self._heartbeat
        now = time.monotonic()
        if now - self._last_beat < every:
            return
        self._last_beat = now
        self._sending_since = self._sending_since or now  # a beat stuck in retries is a stall
        try:
            beat()
        except Exception as err:  # a missed heartbeat is retried at the next one
            log.debug("heartbeat failed: %s", err)
        finally:
            self._sending_since = None

    def _run(self) -> None:
        taken = 0  # rows moved into pending whose points are not all stored yet
        while True:
            with self._wake:
                if not self._closing and not self._flush_asked:
                    self._wake.wait(timeout=self._interval)
                self._flush_asked = False
                closing = self._closing
            self._beat()
            while (self._rows or self._pending) and not self._abandoned:
                taken += self._take()
                if not self._send(everything=not self._rows):
                    with self._wake:  # sleep, but wake for abandon()
                        self._wake.wait_for(lambda: self._abandoned, timeout=self._retry)
                    continue
                if not self._pending:
                    with self._wake:
                        self._done += taken
                        taken = 0
                        self._wake.notify_all()
            if closing:
                return
