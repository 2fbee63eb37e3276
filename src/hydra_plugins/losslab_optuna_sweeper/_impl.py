"""The sweep itself: ask a batch of Optuna trials, launch them, tell the results.

Why not the published hydra-optuna-sweeper: its jobs never see their trial, so nothing can be
pruned, and one failing job ends the sweep. This one takes its settings with the same meaning
and adds what a shared, crash-safe study needs: jobs get their trial through
``hydra.job.env_set`` (so any launcher carries it, see :mod:`losslab.search.trial`), a job
that raises ``optuna.TrialPruned`` ends its trial PRUNED, a failing one FAIL with the reason,
and re-running the same command continues the study up to ``n_trials`` in total. It talks to
Optuna and the launcher only: the MLflow parent run is losslab's Hydra callback's. With
``workers=N`` the batches give way to N jobs that pull trials (:mod:`.workers`), with the
same ask and tell.
"""

from __future__ import annotations

import logging
import math
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from hydra_plugins.losslab_optuna_sweeper import checks, results, samplers, search_space
from losslab.search import storage as storages
from losslab.search.heartbeat import Heartbeat, JobLost, retry
from losslab.search.trial import TrialRef
from losslab.search.worker import INFRASTRUCTURE_ATTR, counted

log = logging.getLogger(__name__)

MAX_INFRASTRUCTURE_IN_A_ROW = 3


class SweepFailed(RuntimeError):
    """More trials failed than ``max_failure_rate`` allows, or the store stayed away for
    several in a row. ``exit_code``: the command ends with its message in one line."""

    exit_code = 1


class DrawError(RuntimeError):
    """A trial's params could not be drawn (a suggest call, ``custom_search_space``)."""


class OptunaSweeperImpl:
    def __init__(  # noqa: PLR0913 - Hydra passes each key of hydra.sweeper as one argument
        self,
        sampler: Any,
        pruner: Any,
        direction: Any,
        study_name: str | None,
        storage: str | None,
        n_trials: int,
        n_jobs: int,
        load_if_exists: bool,
        max_failure_rate: float,
        params: Any = None,
        custom_search_space: str | None = None,
        heartbeat_interval: int | None = 60,
        grace_period: int | None = None,
        max_retry: int = 0,
        allow_changed_study: bool = False,
        search_space: Any = None,  # hydra-optuna-sweeper's deprecated form of params
        trials_per_run: int | None = None,
        workers: int = 0,
        detach: bool = False,
    ) -> None:
        checks.counts(n_trials, n_jobs, max_failure_rate, heartbeat_interval)
        checks.trials_per_run(trials_per_run)
        checks.workers(workers, detach, trials_per_run)
        self.workers = workers
        self.detach = detach
        self.trials_per_run = trials_per_run
        self.asked = 0  # trials this command asked for
        self.sampler_config = sampler
        self.sampler: optuna.samplers.BaseSampler | None = None
        self.pruner = samplers.build_pruner(pruner)
        self.directions = checks.directions(direction)
        self.study_name = study_name
        self.storage_url = storage
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.load_if_exists = load_if_exists
        self.max_failure_rate = max_failure_rate
        del params, search_space  # read in sweep(), with the command line's overrides
        self.custom_search_space = get_method(custom_search_space) if custom_search_space else None
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.max_retry = max_retry
        self.allow_changed_study = allow_changed_study
        self.config: DictConfig | None = None
        self.storage: optuna.storages.BaseStorage | None = None
        self.launcher = None
        self.job_idx = 0
        self.infrastructure_in_a_row = 0
        self.infrastructure_reason = ""

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    # -- the study -------------------------------------------------------------------------
    def _study(self, sweep_dir: Path, space: search_space.SearchSpace) -> optuna.Study:
        self.storage_url = self.storage_url or storages.default_url(sweep_dir)
        self.study_name = self.study_name or sweep_dir.name
        self.storage = storages.open_storage(
            self.storage_url, self.heartbeat_interval, self.grace_period, self.max_retry
        )
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self.storage,
            pruner=self.pruner,
            directions=self.directions,
            load_if_exists=self.load_if_exists,
        )
        self.sampler = study.sampler = samplers.build_sampler(
            self.sampler_config, space.distributions, len(study.trials), self.n_trials
        )
        if [d.name.lower() for d in study.directions] != self.directions:
            raise ValueError(
                f"study {self.study_name!r} in {self.storage_url} has directions "
                f"{[d.name.lower() for d in study.directions]}, not {self.directions}"
            )
        self._stamp(study)
        return study

    def _stamp(self, study: optuna.Study) -> None:
        """A new study records what it is about; an existing one must be about the same."""
        from losslab.search import study as identities

        if self.config is None or "data" not in self.config:
            return
        current = identities.identity(self.config)
        stored = study.user_attrs.get(identities.IDENTITY_ATTR)
        identities.check_same(stored, current, self.study_name, self.allow_changed_study)
        if stored is None:
            study.set_user_attr(identities.IDENTITY_ATTR, current)

    # -- one trial -------------------------------------------------------------------------
    def _ask(self, study: optuna.Study) -> optuna.Trial:
        with warnings.catch_warnings():  # the sweeper and its jobs beat (losslab.search.heartbeat)
            warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
            self.asked += 1
            return study.ask()

    def _overrides(self, trial: optuna.Trial, space: search_space.SearchSpace) -> list[str]:
        """The job's overrides: fixed ones, the trial's params, where the trial lives.

        Raises :class:`DrawError` when suggesting or ``custom_search_space`` fails.
        """
        for key, dist in space.distributions.items():
            try:
                search_space.suggest(trial, key, dist)
            except Exception as err:
                raise DrawError(f"suggesting {key}: {type(err).__name__}: {err}") from err
        extra: list[str] = []
        if self.custom_search_space is not None:
            try:
                returned = self.custom_search_space(self.config, trial)
                extra = [search_space.as_override(k, v) for k, v in (returned or {}).items()]
            except Exception as err:  # raised, or returned something that is not a dict
                name = self.custom_search_space.__qualname__
                raise DrawError(f"custom_search_space {name}: {type(err).__name__}: {err}") from err
        ref = TrialRef(trial.number, self.study_name, self.storage_url, self.heartbeat_interval)
        env = [
            f"++hydra.job.env_set.{key}={search_space.override_value(value)}"
            for key, value in ref.env().items()
        ]
        # the sweep's folder as the sweep resolved it: a folder named after the study's
        # fingerprint would otherwise be resolved again from each job's own overrides
        sweep_dir = search_space.override_value(str(self.config.hydra.sweep.dir))
        env.append(f"hydra.sweep.dir={sweep_dir}")
        sampled = [search_space.as_override(k, v) for k, v in trial.params.items()]
        return [*space.fixed, *sampled, *extra, *env]

    def _tell(self, study: optuna.Study, trial: Any, ret: JobReturn | None) -> TrialState:
        """End one trial from its job's result; returns the state it ended in.

        A job that raised ``optuna.TrialPruned`` (as an Optuna objective does when its pruner
        says so) ends PRUNED; any other exception FAIL with its message; a job its scheduler
        ended (:class:`JobLost`) FAIL and queued again, as if its heartbeat had stopped; a job
        whose error says ``infrastructure`` (its tracking store stayed away) FAIL, not counted,
        its params queued again. The job's exception is read without Hydra's
        ``return_value``, which prints "Error executing job" for it.
        """
        if ret is None:
            return self._fail(study, trial, "the launcher returned no result for this job")
        if ret.status == JobStatus.FAILED or isinstance(ret._return_value, BaseException):
            err = ret._return_value
            if isinstance(err, optuna.TrialPruned):
                study.tell(trial, state=TrialState.PRUNED)
                return TrialState.PRUNED
            if isinstance(err, JobLost):  # retried with the params it had, before its reason
                retry(self.storage, study, self._trial_id(trial.number))
            if getattr(err, "infrastructure", False):
                return self._queue_again(study, trial, f"{type(err).__name__}: {err}")
            self.infrastructure_in_a_row = 0
            return self._fail(study, trial, f"{type(err).__name__}: {err}")
        self.infrastructure_in_a_row = 0
        return self._tell_values(study, trial, ret._return_value)

    def _tell_values(self, study: optuna.Study, trial: Any, value: Any) -> TrialState:
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value)
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if len(values) != len(self.directions):
            return self._fail(
                study,
                trial,
                f"job returned {len(values)} value(s) for {len(self.directions)} direction(s)",
            )
        try:
            numbers = [float(v) for v in values]
        except (TypeError, ValueError):
            return self._fail(study, trial, f"job returned {value!r}, not a number")
        if not all(math.isfinite(v) for v in numbers):
            return self._fail(study, trial, f"job returned {value!r}")
        study.tell(trial, numbers)
        return TrialState.COMPLETE

    def _queue_again(self, study: optuna.Study, trial: Any, reason: str) -> TrialState:
        """A trial its job could not record (the tracking store away past the job's wait):
        FAIL with the reason and marked, its params queued for a later trial, and neither it
        nor its params counted as failed; a store away for several trials in a row ends the
        sweep. WAITING: what its params now are. Queued before the trial stops counting, so
        a worker that then finds a place takes these params (:mod:`losslab.search.worker`)."""
        study.enqueue_trial(trial.params, skip_if_exists=False)
        trial.set_user_attr(INFRASTRUCTURE_ATTR, True)
        self._fail(study, trial, reason)
        self.infrastructure_in_a_row += 1
        self.infrastructure_reason = reason
        return TrialState.WAITING

    @staticmethod
    def _fail(study: optuna.Study, trial: Any, reason: str) -> TrialState:
        log.warning("trial %d failed: %s", trial.number, reason)
        trial.set_user_attr("fail_reason", reason[:2000])
        study.tell(trial, state=TrialState.FAIL)
        return TrialState.FAIL

    def _fail_stale(self, study: optuna.Study) -> None:
        """End FAIL the trials whose jobs were killed (their heartbeat stopped)."""
        if not self.heartbeat_interval:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)

    def _beating(self, numbers: list[int]) -> Heartbeat | nullcontext:
        """Heartbeats for a launched batch while the sweeper waits on it."""
        if not self.heartbeat_interval:
            return nullcontext()
        ids = [self._trial_id(n) for n in numbers]
        return Heartbeat(self.storage, ids, self.heartbeat_interval)

    def _trial_id(self, number: int) -> int:
        study_id = self.storage.get_study_id_from_name(self.study_name)
        return self.storage.get_trial_id_from_study_id_trial_number(study_id, number)

    def _batch_size(self, study: optuna.Study) -> int:
        size = min(self.n_jobs, self._remaining(study))
        if self.trials_per_run is not None:
            size = min(size, self.trials_per_run - self.asked)
        return size

    def _remaining(self, study: optuna.Study) -> int:
        return self.n_trials - counted(study)

    # -- the sweep ---------------------------------------------------------------------------
    def sweep(self, arguments: list[str]) -> list[JobReturn]:
        assert self.config is not None and self.launcher is not None
        launcher = self.config.hydra.get("launcher")
        space = checks.sweep_settings(self.config.hydra.sweeper, arguments, launcher)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        study = self._study(sweep_dir, space)
        self._cap_to_grid()
        self._fail_stale(study)
        log.info(
            "study %s in %s: %d of %d trials to run",
            self.study_name,
            self.storage_url,
            max(self._remaining(study), 0),
            self.n_trials,
        )
        if self.workers:
            from hydra_plugins.losslab_optuna_sweeper import _workers as workers

            finished = workers.sweep(self, study, space)
            return self._finish(study, sweep_dir, []) if finished else []
        self.job_idx = len(study.trials)
        returns: list[JobReturn] = []
        failed = 0
        while not samplers.exhausted(self.sampler) and (n := self._batch_size(study)) > 0:
            failed += self._run_batch(study, space, n, returns)
            self._check_failures(study, failed)
            self._fail_stale(study)
        return self._finish(study, sweep_dir, returns)

    @staticmethod
    def _finish(study: optuna.Study, sweep_dir: Path, returns: list) -> list[JobReturn]:
        results.write(study, sweep_dir)
        results.print_best(study)
        return returns

    def _cap_to_grid(self) -> None:
        """A grid is searched once: no more trials than it has points."""
        size = samplers.grid_size(self.sampler)
        if size is not None and size < self.n_trials:
            log.info("n_trials=%d: the grid has %d points", self.n_trials, size)
            self.n_trials = size

    def _run_batch(
        self, study: optuna.Study, space: search_space.SearchSpace, n: int, returns: list
    ) -> int:
        """Ask ``n`` trials, launch their jobs, tell each result; the number that failed.

        A trial whose params cannot be drawn ends FAIL with the reason; interrupted (Ctrl-C,
        a launcher error), no trial of the batch is left RUNNING.
        """
        asked: list[Any] = []
        told: set[int] = set()
        failed = 0
        reason = "sweep interrupted"
        try:
            batch = []
            for _ in range(n):
                asked.append(trial := self._ask(study))
                try:
                    batch.append((trial, self._overrides(trial, space)))
                except DrawError as err:  # a bad draw fails its trial, the sweep goes on
                    failed += self._fail(study, trial, str(err)) == TrialState.FAIL
                    told.add(trial.number)
            if not batch:
                return failed
            try:
                with self._beating([trial.number for trial, _ in batch]):
                    launched = self.launcher.launch(
                        [overrides for _, overrides in batch], initial_job_idx=self.job_idx
                    )
            except Exception as err:
                reason = f"the launcher failed: {type(err).__name__}: {err}"
                raise
            self.job_idx += len(batch)
            for i, (trial, _) in enumerate(batch):
                ret = launched[i] if i < len(launched) else None
                failed += self._tell(study, trial, ret) == TrialState.FAIL
                told.add(trial.number)
                if ret is not None:
                    returns.append(ret)
        finally:
            for trial in asked:
                if trial.number not in told:
                    self._fail(study, trial, reason)
        return failed

    def _check_failures(self, study: optuna.Study, failed: int) -> None:
        if self.infrastructure_in_a_row >= MAX_INFRASTRUCTURE_IN_A_ROW:
            raise SweepFailed(
                f"{self.infrastructure_in_a_row} trials in a row could not be recorded "
                f"({self.infrastructure_reason}); their params are queued: run the same "
                "command once it is back"
            )
        if failed <= self.max_failure_rate * self.n_trials:
            return
        reasons = [
            t.user_attrs.get("fail_reason", "?")
            for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        ]
        raise SweepFailed(
            f"{failed} trials failed, more than max_failure_rate={self.max_failure_rate} of "
            f"n_trials={self.n_trials}; last failure: {reasons[-1] if reasons else '?'}"
        )
