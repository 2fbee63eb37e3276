"""Plain ``study.optimize`` recorded to MLflow: ``from losslab.optuna import MlflowCallback``.

    mlflc = MlflowCallback(metric_name="accuracy")

    @mlflc.track_in_mlflow()  # optional: the trial's own logging goes into its run
    def objective(trial): ...

    study.optimize(objective, n_trials=50, callbacks=[mlflc])
    mlflc.report(study)  # the study's report on its parent run (else done at exit)

The keywords are optuna-integration's ``MLflowCallback``'s (deprecated there), with the run
structure of losslab's sweeps: one parent run per study (its id kept in the study's user
attributes, so a resumed study, in this process or another, goes on under it), one child run
per trial with its params, values, intermediate values (metric ``intermediate_value`` at
step = the step reported), user attributes, state and failure reason; a pruned trial is
FINISHED and tagged ``losslab.outcome=pruned`` with ``[pruned]`` in front of its name, a failed
one FAILED with the error in ``losslab.error``, as in a sweep.

It talks to MLflow through an ``MlflowClient`` (no fluent state shared between threads), so
``n_jobs>1`` works; processes sharing one storage create the parent under a lock on the
storage (:func:`losslab.search.storage.creation_lock`).
"""

from __future__ import annotations

import atexit
import functools
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from mlflow.utils.validation import MAX_ENTITIES_PER_BATCH, MAX_TAG_VAL_LENGTH
from mlflow.utils.validation import MAX_PARAMS_TAGS_PER_BATCH as LIMIT_PER_BATCH
from optuna.trial import FrozenTrial, TrialState

from losslab.search import report, storage
from losslab.tracking import names, tag_keys
from losslab.tracking.writer import log_in_batches

__all__ = ["MlflowCallback"]

PARENT_ATTR = "mlflow_parent_run_id"  # the study's user attribute naming its parent run
RUN_ID_ATTR = "mlflow_run_id"  # a trial's user attribute naming its run, as in a sweep
INTERMEDIATE = "intermediate_value"
_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "FINISHED"}
_OUTCOME = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "PRUNED"}


class MlflowCallback:
    """Records each finished trial of ``study.optimize(callbacks=[this])`` as a child run of
    the study's parent run. ``tracking_uri``: MLflow's current one when None;
    ``create_experiment``: the experiment named after the study (else ``mlflow_kwargs``'
    ``experiment_id``, else MLflow's current experiment); ``mlflow_kwargs``: ``run_name``
    (the children's name, the trial number by default), ``tags`` (on every run),
    ``experiment_id``; ``metric_name``: the values' names (``value``, or ``value_0``, ... for
    several); ``tag_trial_user_attrs`` / ``tag_study_user_attrs``: user attributes as tags.
    The callback records through a client of its own; :meth:`track_in_mlflow` makes
    ``tracking_uri`` MLflow's tracking URI (as optuna-integration's does), so the objective's
    own logging goes to the same store."""

    def __init__(  # noqa: PLR0913 - optuna-integration's MLflowCallback's keywords
        self,
        tracking_uri: str | None = None,
        metric_name: str | Sequence[str] = "value",
        create_experiment: bool = True,
        mlflow_kwargs: dict[str, Any] | None = None,
        tag_study_user_attrs: bool = False,
        tag_trial_user_attrs: bool = True,
    ) -> None:
        if not isinstance(metric_name, (str, Sequence)):
            raise TypeError(f"metric_name={metric_name!r}: a str or a sequence of str")
        self.tracking_uri = tracking_uri
        self.metric_name = metric_name
        self.create_experiment = create_experiment
        self.mlflow_kwargs = dict(mlflow_kwargs or {})
        self.tag_study_user_attrs = tag_study_user_attrs
        self.tag_trial_user_attrs = tag_trial_user_attrs
        self._lock = threading.Lock()
        self._parents: dict[str, tuple[str, str]] = {}  # study name -> experiment, run
        self._open: dict[str, optuna.Study] = {}  # studies whose parent this process ends
        self._reasons: dict[tuple[str, int], str] = {}  # why a trial of this process failed
        self._client: MlflowClient | None = None

    # -- MLflow -------------------------------------------------------------------------
    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            import mlflow

            self._client = MlflowClient(self.tracking_uri or mlflow.get_tracking_uri())
        return self._client

    def _experiment_id(self, study: optuna.Study) -> str:
        import mlflow

        if self.create_experiment:
            found = self.client.get_experiment_by_name(study.study_name)
            if found is not None:
                return found.experiment_id
            return self.client.create_experiment(study.study_name)
        if "experiment_id" in self.mlflow_kwargs:
            return str(self.mlflow_kwargs["experiment_id"])
        from mlflow.tracking.fluent import _get_experiment_id

        if self.tracking_uri:
            mlflow.set_tracking_uri(self.tracking_uri)
        return _get_experiment_id()

    def parent(self, study: optuna.Study) -> tuple[str, str]:
        """The study's experiment and parent run: the one its user attributes name, else a
        new one, created under a lock on the storage so processes sharing it make one."""
        key = study.study_name
        with self._lock:
            if key not in self._parents:
                run_id = study.user_attrs.get(PARENT_ATTR)
                if run_id is None:
                    with storage.creation_lock(study._storage):
                        run_id = study.user_attrs.get(PARENT_ATTR) or self._new_parent(study)
                run = self.client.get_run(run_id)
                if run.info.status != "RUNNING":  # a resumed study: its parent goes on
                    self.client.update_run(run_id, "RUNNING")
                self._parents[key] = (run.info.experiment_id, run_id)
                if not self._open:
                    atexit.register(self.close)
                self._open[key] = study
            return self._parents[key]

    def _new_parent(self, study: optuna.Study) -> str:
        tags = {
            **{k: str(v) for k, v in self.mlflow_kwargs.get("tags", {}).items()},
            tag_keys.RUN_TYPE: "sweep",
            tag_keys.STUDY_NAME: study.study_name,
            "optuna.sampler": type(study.sampler).__name__,
            "optuna.pruner": type(study.pruner).__name__,
            "optuna.directions": ",".join(d.name.lower() for d in study.directions),
        }
        run = self.client.create_run(
            self._experiment_id(study), tags=tags, run_name=study.study_name
        )
        study.set_user_attr(PARENT_ATTR, run.info.run_id)
        return run.info.run_id

    def _child(self, study: optuna.Study, number: int, start_ms: int | None = None) -> str:
        experiment_id, parent_id = self.parent(study)
        tags = {k: str(v) for k, v in self.mlflow_kwargs.get("tags", {}).items()}
        tags.update(
            {
                MLFLOW_PARENT_RUN_ID: parent_id,
                tag_keys.STUDY_NAME: study.study_name,
                tag_keys.TRIAL_NUMBER: str(number),
                tag_keys.RUN_TYPE: "job",
            }
        )
        run = self.client.create_run(experiment_id, start_ms, tags, run_name=self._name(number))
        return run.info.run_id

    # -- Optuna ---------------------------------------------------------------------------
    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Record one finished trial into its run (made by :meth:`track_in_mlflow`, or now)."""
        run_id = trial.user_attrs.get(RUN_ID_ATTR)
        if run_id is None:
            start = _ms(trial.datetime_start)
            run_id = self._child(study, trial.number, start)
        self._record(study, trial, run_id)

    def _record(self, study: optuna.Study, trial: FrozenTrial, run_id: str) -> None:
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in self._values(trial.values).items()]
        metrics += [
            Metric(INTERMEDIATE, float(v), now, int(step))
            for step, v in trial.intermediate_values.items()
        ]
        params = [Param(k, str(v)) for k, v in trial.params.items()]
        tags = self._tags(study, trial)
        fits = len(params) <= LIMIT_PER_BATCH and len(tags) <= LIMIT_PER_BATCH
        if fits and len(metrics) + len(params) + len(tags) <= MAX_ENTITIES_PER_BATCH:
            self.client.log_batch(run_id, metrics, params, tags)  # one request, as a rule
        else:
            log_in_batches(self.client, run_id, metrics, params)
            for i in range(0, len(tags), LIMIT_PER_BATCH):
                self.client.log_batch(run_id, tags=tags[i : i + LIMIT_PER_BATCH])
        status = _STATUS.get(trial.state, "FAILED")
        self.client.set_terminated(run_id, status, _ms(trial.datetime_complete))

    def _values(self, values: list[float] | None) -> dict[str, float]:
        """The trial's values under optuna-integration's names."""
        if values is None:
            return {}
        names_ = self.metric_name
        if isinstance(names_, str):
            names_ = [names_] if len(values) == 1 else [f"{names_}_{i}" for i in range(len(values))]
        if len(names_) != len(values):
            raise ValueError(
                f"metric_name={list(names_)}: one name per objective value ({len(values)})"
            )
        return dict(zip(names_, values, strict=True))

    def _name(self, number: int) -> str:
        return str(self.mlflow_kwargs.get("run_name", number))

    def _tags(self, study: optuna.Study, trial: FrozenTrial) -> list[RunTag]:
        outcome = _OUTCOME.get(trial.state, "FAILED")
        tags: dict[str, Any] = {
            "number": trial.number,
            "datetime_start": trial.datetime_start,
            "datetime_complete": trial.datetime_complete,
            "state": trial.state.name,
            "direction": ",".join(d.name for d in study.directions),
            **{f"{k}_distribution": v for k, v in trial.distributions.items()},
            tag_keys.OUTCOME: outcome.lower(),
            MLFLOW_RUN_NAME: names.marked(self._name(trial.number), outcome),
        }
        if self.tag_trial_user_attrs:
            tags.update(trial.user_attrs)
        if self.tag_study_user_attrs:
            tags.update(study.user_attrs)
        reason = self._reasons.pop((study.study_name, trial.number), None)
        if trial.state == TrialState.PRUNED:
            tags[tag_keys.PRUNED] = "true"
            tags[tag_keys.PRUNED_REASON] = reason or f"pruned at step {trial.last_step}"
        elif trial.state == TrialState.FAIL:
            tags[tag_keys.ERROR] = reason or "the objective returned no valid value"
        return [RunTag(k, _tag_value(v)) for k, v in tags.items()]

    def track_in_mlflow(self) -> Callable:
        """Decorator for the objective: the trial's run is made before it starts and is the
        active MLflow run while it runs (``mlflow.log_metric``, ``losslab.keras.MlflowLogger``
        record into it; in each thread its own); the callback then records the trial into it."""

        def decorator(func: Callable[[optuna.Trial], Any]) -> Callable[[optuna.Trial], Any]:
            @functools.wraps(func)
            def wrapper(trial: optuna.Trial) -> Any:
                import mlflow

                run_id = self._child(trial.study, trial.number)
                trial.set_user_attr(RUN_ID_ATTR, run_id)
                if self.tracking_uri:
                    mlflow.set_tracking_uri(self.tracking_uri)
                with mlflow.start_run(run_id=run_id):
                    try:
                        return func(trial)
                    except optuna.TrialPruned as pruned:
                        self._note(trial, str(pruned))
                        raise
                    except (Exception, KeyboardInterrupt) as err:
                        self._failed(trial, run_id, err)
                        raise

            return wrapper

        return decorator

    def _note(self, trial: optuna.Trial, reason: str) -> None:
        self._reasons[(trial.study.study_name, trial.number)] = reason[:5000]

    def _failed(self, trial: optuna.Trial, run_id: str, err: BaseException) -> None:
        """Marked now, as a failed sweep job is: callbacks are not called for an error that
        ``optimize(catch=...)`` does not catch."""
        reason = f"{type(err).__name__}: {err}"
        self._note(trial, reason)
        tags = {tag_keys.OUTCOME: "failed", tag_keys.ERROR: reason[:5000]}
        tags[MLFLOW_RUN_NAME] = names.marked(self._name(trial.number), "FAILED")
        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def report(self, study: optuna.Study) -> str:
        """The study's report on its parent run (trial counts, best value, best params as
        tags, the history with pruned and failed trials, importances or the Pareto front,
        every trial as a table), read from the storage so every process's trials count; the
        parent then ends FINISHED. Returns the parent's run id."""
        return self._end(study, "FINISHED")

    def close(self) -> None:
        """End each parent this process opened and :meth:`report` did not: the report, then
        FINISHED, or KILLED or FAILED when the process ends on Ctrl-C or an error. Called at
        exit, so a script that never calls ``report`` leaves no parent RUNNING."""
        status = _exit_status()
        for study in list(self._open.values()):
            try:
                self._end(study, status)
            except Exception as err:  # at exit: one line, not a traceback
                from losslab.tracking.redact import redact_text

                reason = redact_text(str(err).splitlines()[0] if str(err) else type(err).__name__)
                print(
                    f"losslab: the parent run of {study.study_name} is left RUNNING: {reason}",
                    file=sys.stderr,
                )

    def _end(self, study: optuna.Study, status: str) -> str:
        _, run_id = self.parent(study)
        report.log_study_end(self.client, run_id, study, params=False)
        self.client.set_terminated(run_id, status)
        with self._lock:
            self._parents.pop(study.study_name, None)
            self._open.pop(study.study_name, None)
        if not self._open:
            atexit.unregister(self.close)
        return run_id


def _exit_status() -> str:
    """How the process is ending, for :meth:`MlflowCallback.close` at exit: Python sets
    ``sys.last_value`` when an uncaught exception ended the main program."""
    last = getattr(sys, "last_value", None)
    if last is None:
        return "FINISHED"
    return "KILLED" if isinstance(last, KeyboardInterrupt) else "FAILED"


def _ms(when) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def _tag_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_TAG_VAL_LENGTH else text[: MAX_TAG_VAL_LENGTH - 3] + "..."
