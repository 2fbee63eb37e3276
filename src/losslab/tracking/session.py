"""The run a Keras callback records into when no pipeline hands it one, and how it ends.

Inside ``with mlflow.start_run():`` the callback records into that active run and leaves its
status to the ``with`` block. Outside one it starts a run in MLflow's current tracking URI and
experiment (``mlflow.set_tracking_uri``/``set_experiment`` or their environment variables),
with the tags MLflow's own ``start_run`` adds (user, source, git commit), and ends it:
FINISHED when ``fit`` returns. Keras calls no callback when ``fit`` raises, so a run still
open when the process ends is ended FAILED (KILLED after Ctrl-C) with the uncaught error, and
one left open by a ``fit`` whose error was caught is ended FAILED when the same callback's
next ``fit`` starts. Under ``mlflow run`` (``MLFLOW_RUN_ID``) it records into the run
``mlflow run`` made, which ``mlflow run`` ends. Either way the points already queued are
stored first, or spilled to a folder under ``./mlflow_spill`` (its path printed) for
``losslab replay`` when the store is away.
"""

from __future__ import annotations

import atexit
import sys
import uuid
from pathlib import Path

from mlflow.environment_variables import MLFLOW_EXPERIMENT_ID, MLFLOW_EXPERIMENT_NAME

from losslab.tracking.run import Liveness, RunStart, TrackedRun
from losslab.tracking.spill import SPILL_DIR

DEFAULT_EXPERIMENT = "Default"
OFFLINE_AFTER_S = 120.0  # as the pipeline's tracking.offline_after_s
NOT_FINISHED = "fit did not finish (an exception ended it)"

_open: list[TrackedRun] = []  # runs this process started and has not ended yet
_uncaught: list[BaseException] = []  # the last uncaught exception, once there is one
_hooked = False


def _tracking_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def _experiment_name(uri: str) -> str:
    """The experiment MLflow's fluent API would record into: ``set_experiment`` (which sets
    ``MLFLOW_EXPERIMENT_ID``), ``MLFLOW_EXPERIMENT_NAME``, else "Default"."""
    from mlflow import MlflowClient

    if MLFLOW_EXPERIMENT_ID.get():
        return MlflowClient(uri).get_experiment(MLFLOW_EXPERIMENT_ID.get()).name
    return MLFLOW_EXPERIMENT_NAME.get() or DEFAULT_EXPERIMENT


def _liveness(run_key: str, why_offline: str | None) -> Liveness:
    return Liveness(
        spill_dir=Path.cwd() / SPILL_DIR / run_key,
        offline_after_s=OFFLINE_AFTER_S,
        start_offline=why_offline,
    )


def attach(run_id: str) -> TrackedRun:
    """Record into the active run ``run_id``; its ``with`` block ends it, :func:`end` only
    stores what is queued."""
    from losslab.tracking import reachable

    uri = _tracking_uri()
    why = reachable.store_error(uri)
    start = RunStart(run_id=run_id, attach=True)
    return _opened(TrackedRun(uri, "", start, _liveness(run_id, why)))


def start(run_name: str | None) -> TrackedRun:
    """A run of our own in MLflow's current experiment; :func:`end` ends it."""
    from mlflow.tracking.context.registry import resolve_tags

    from losslab.tracking import reachable

    uri = _tracking_uri()
    why = reachable.store_error(uri)
    if why is None:
        experiment = _experiment_name(uri)
    else:  # an experiment set by id cannot be named now; the replay records into this one
        experiment = MLFLOW_EXPERIMENT_NAME.get() or DEFAULT_EXPERIMENT
    run_start = RunStart(run_name=run_name, tags=resolve_tags({}))
    return _opened(TrackedRun(uri, experiment, run_start, _liveness(uuid.uuid4().hex, why)))


def _opened(tracked: TrackedRun) -> TrackedRun:
    _hook_exit()
    _open.append(tracked)
    return tracked


def end(tracked: TrackedRun, error: BaseException | None = None) -> None:
    """Store what is queued and end a run of our own: FINISHED, or as ``error`` calls for."""
    if tracked in _open:
        _open.remove(tracked)
    tracked.__exit__(type(error) if error else None, error, None)


def end_if_left_open(tracked: TrackedRun | None) -> None:
    """A run of an earlier fit that raised (its error caught): FAILED, what it queued
    stored."""
    if tracked is not None and tracked in _open:
        end(tracked, RuntimeError(NOT_FINISHED))


def _hook_exit() -> None:
    """Remember the uncaught exception, and end the runs still open when Python exits."""
    global _hooked
    if _hooked:
        return
    previous = sys.excepthook

    def remember(exc_type: type[BaseException], exc: BaseException, tb: object) -> None:
        _uncaught[:] = [exc]
        previous(exc_type, exc, tb)

    sys.excepthook = remember
    atexit.register(_end_at_exit)
    _hooked = True


def _end_at_exit() -> None:
    error = _uncaught[-1] if _uncaught else RuntimeError(NOT_FINISHED)
    for tracked in list(_open):
        end(tracked, error)
