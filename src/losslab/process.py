"""The end of a process that ran one command or one Slurm job: no last garbage collections.

Python collects garbage while it shuts down, walking every object still alive; after a job
that is every object TensorFlow, Keras, MLflow and SQLAlchemy made: about 2 s of a 10 s
``python train.py`` on a 2-core machine (BENCHMARKS.md, figure 6). Nothing a job records waits
for those walks: its run is closed and its files written before, and atexit handlers (logging's
flush, MLflow's) still run after. So the process freezes what is alive (``gc.freeze``) once its
work is done. Only where the process ends: a test or a sweep calling the app in-process goes on
collecting as before.

And the signals that end a process early: SIGTERM (Slurm's preemption, ``scancel``, a time
limit) and SIGHUP raise :class:`Terminated` where Python would end at once, so a command or
a sweep's worker ends as after Ctrl-C, with nothing left RUNNING.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


def then_exit(work: Callable[[], T]) -> T:
    """``work()``, then no garbage collection for what it leaves to a process that now ends."""
    try:
        return work()
    finally:
        gc.freeze()


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread so a command ends as after Ctrl-C: queued
    points stored or spilled, the run KILLED, the trial failed, the sweep's parent ended."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def interruption(signum: int) -> KeyboardInterrupt:
    """What a signal raises once it may: Ctrl-C's KeyboardInterrupt, else :class:`Terminated`."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


_SENT: list[int] = []  # every stopping signal this process was sent and handled, in order


def signals_sent() -> int:
    """How many stopping signals this process has been sent so far (see :func:`sent_since`)."""
    return len(_SENT)


def sent_since(count: int) -> int | None:
    """The last stopping signal sent since :func:`signals_sent` gave ``count``, if any. Code
    inside a block may catch or convert the exception a signal raised (psycopg cancels its
    query, and Optuna's storage reports a failed commit); the block's owner, comparing the
    count at its start and its end, still knows the process is to end."""
    return _SENT[-1] if len(_SENT) > count else None


def record_sent(signum: int) -> None:
    """Note a stopping signal a handler took (see :func:`sent_since`)."""
    _SENT.append(signum)


@contextlib.contextmanager
def terminations_as_interrupts(*also: int) -> Iterator[None]:
    """Python ends a process on SIGTERM and SIGHUP at once, leaving its runs RUNNING and the
    last epoch's points unsent; here they (and the signals ``also`` names) raise
    :class:`Terminated` instead, and are recorded (:func:`sent_since`)."""
    if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
        yield  # not on Windows; handlers can only be set in the main thread
        return

    def terminated(signum: int, frame: object) -> None:
        record_sent(signum)
        raise Terminated(signum)

    with handling((signal.SIGTERM, signal.SIGHUP, *also), terminated):
        yield


@contextlib.contextmanager
def handling(signals: tuple[int, ...], handler: Callable[[int, object], None]) -> Iterator[None]:
    """``handler`` for ``signals`` while the block runs, the previous handlers back after."""
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)
