"""The end of a process that ran one command or one Slurm job: no last garbage collections.

Python collects garbage while it shuts down, walking every object still alive; after a job
that is every object TensorFlow, Keras, MLflow and SQLAlchemy made: about 2 s of a 10 s
``python train.py`` on a 2-core machine (BENCHMARKS.md, figure 6). Nothing a job records waits
for those walks: its run is closed and its files written before, and atexit handlers (logging's
flush, MLflow's) still run after. So the process freezes what is alive (``gc.freeze``) once its
work is done. Only where the process ends: a test or a sweep calling the app in-process goes on
collecting as before.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def then_exit(work: Callable[[], T]) -> T:
    """``work()``, then no garbage collection for what it leaves to a process that now ends."""
    try:
        return work()
    finally:
        gc.freeze()
