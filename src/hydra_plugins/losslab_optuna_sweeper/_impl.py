"""The sweep itself: ask a batch of Optuna trials, launch them, tell the results.

Why not the published hydra-optuna-sweeper: it pins ``optuna<3``, fails at start with a
storage URL on SQLAlchemy 2, and its jobs never see their trial, so nothing can be pruned.
This one keeps its search-space syntax and adds what a shared, crash-safe study needs: jobs
get their trial through ``hydra.job.env_set`` (so any launcher carries it, see
:mod:`losslab.search.trial`), a pruned job ends its trial PRUNED, a failing one FAIL with the
reason, and re-running the same command continues the study up to ``n_trials`` in total.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from hydra_plugins.losslab_optuna_sweeper import search_space
from losslab.search import storage as storages
from losslab.search.heartbeat import Heartbeat
from losslab.search.trial import Pruned, TrialRef

log = logging.getLogger(__name__)

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)


class SweepFailed(RuntimeError):
    """More trials failed than ``max_failure_rate`` allows."""


def _directions(direction: Any) -> list[str]:
    values = [direction] if isinstance(direction, str) else list(direction)
    for value in values:
        if value not in ("maximize", "minimize"):
            raise ValueError(f"hydra.sweeper.direction={value!r}: use maximize or minimize")
    return values


def _check_node(kind: str, node: Any, options: str) -> None:
    if node is not None and not (isinstance(node, (DictConfig, dict)) and "_target_" in node):
        raise ValueError(
            f"hydra.sweeper.{kind}={node!r} is not a {kind}: choose one with "
            f"hydra/sweeper/{kind}={options}, or give a node with a _target_ class"
        )


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
    ) -> None:
        if n_trials < 1 or n_jobs < 1:
            raise ValueError(f"n_trials={n_trials} and n_jobs={n_jobs} must both be >= 1")
        if not 0.0 <= max_failure_rate <= 1.0:
            raise ValueError(f"max_failure_rate={max_failure_rate} must be in [0, 1]")
        _check_node("sampler", sampler, "tpe|random|cmaes")
        _check_node("pruner", pruner, "median|successive_halving|hyperband|none")
        self.sampler_config = sampler
        self.sampler: optuna.samplers.BaseSampler | None = None
        self.pruner = instantiate(pruner) if pruner is not None else optuna.pruners.NopPruner()
        if OmegaConf.is_config(direction):
            direction = OmegaConf.to_container(direction)
        self.directions = _directions(direction)
        self.study_name = study_name
        self.storage_url = storage
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.load_if_exists = load_if_exists
        self.max_failure_rate = max_failure_rate
        self.params = OmegaConf.to_container(params) if OmegaConf.is_config(params) else params
        self.custom_search_space = get_method(custom_search_space) if custom_search_space else None
        if heartbeat_interval is not None and heartbeat_interval < 1:
            raise ValueError(f"heartbeat_interval={heartbeat_interval} must be >= 1 or null")
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.max_retry = max_retry
        self.allow_changed_study = allow_changed_study
        self.config: DictConfig | None = None
        self.storage: optuna.storages.BaseStorage | None = None
        self.launcher = None
        self.job_idx = 0

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    # -- the study -------------------------------------------------------------------------
    def _study(self, sweep_dir: Path) -> optuna.Study:
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
        self.sampler = study.sampler = self._sampler(len(study.trials))
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

    def _sampler(self, n_existing: int) -> optuna.samplers.BaseSampler:
        """The configured sampler; joining a study that has trials, a seed derived from both.

        A resumed study would otherwise draw its first points again. Deriving the seed through
        ``SeedSequence`` (not ``seed + n``) keeps workers with seeds 0 and 1 that join at
        different moments from landing on the same stream.
        """
        node = self.sampler_config
        if not isinstance(node, (DictConfig, dict)):
            return node or optuna.samplers.TPESampler()
        seed = node.get("seed")
        if seed is None or n_existing == 0:
            return instantiate(node)
        import numpy as np

        derived = int(np.random.SeedSequence([seed, n_existing]).generate_state(1)[0])
        return instantiate(node, seed=derived)

    def _ask(self, study: optuna.Study, space: search_space.SearchSpace) -> tuple[Any, list[str]]:
        with warnings.catch_warnings():  # the sweeper and its jobs beat (losslab.search.heartbeat)
            warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
            trial = study.ask(space.distributions)
        extra: list[str] = []
        if self.custom_search_space is not None:
            returned = self.custom_search_space(self.config, trial)
            extra = [search_space.as_override(k, v) for k, v in (returned or {}).items()]
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
        return trial, [*space.fixed, *sampled, *extra, *env]

    def _tell(self, study: optuna.Study, trial: Any, ret: JobReturn | None) -> TrialState:
        """End one trial from its job's result; returns the state it ended in."""
        try:
            if ret is None:
                raise RuntimeError("the launcher returned no result for this job")
            value = ret.return_value
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
            return TrialState.PRUNED
        except Exception as err:  # the job raised: its trial fails, the sweep goes on
            return self._fail(study, trial, f"{type(err).__name__}: {err}")
        if isinstance(value, Pruned):
            study.tell(trial, state=TrialState.PRUNED)
            return TrialState.PRUNED
        values = list(value) if isinstance(value, Sequence) else [value]
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
        study_id = self.storage.get_study_id_from_name(self.study_name)
        ids = [self.storage.get_trial_id_from_study_id_trial_number(study_id, n) for n in numbers]
        return Heartbeat(self.storage, ids, self.heartbeat_interval)

    def _remaining(self, study: optuna.Study) -> int:
        return self.n_trials - len(study.get_trials(deepcopy=False, states=COUNTED))

    # -- the sweep ---------------------------------------------------------------------------
    def sweep(self, arguments: list[str]) -> list[JobReturn]:
        assert self.config is not None and self.launcher is not None
        space = search_space.parse(self.params, arguments)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        study = self._study(sweep_dir)
        self._fail_stale(study)
        parent = _ParentRun.of(self.config, sweep_dir)
        if parent:
            parent.start(study, self, space)
        log.info(
            "study %s in %s: %d of %d trials to run",
            self.study_name,
            self.storage_url,
            max(self._remaining(study), 0),
            self.n_trials,
        )
        self.job_idx = len(study.trials)
        results: list[JobReturn] = []
        failed = 0
        try:
            while (n := min(self.n_jobs, self._remaining(study))) > 0:
                failed += self._run_batch(study, space, n, results)
                self._check_failures(study, failed)
                self._fail_stale(study)
        except BaseException as err:
            if parent:
                parent.end(study, failed=err)
            raise
        if parent:
            parent.end(study)
        _print_best(study)
        return results

    def _run_batch(
        self, study: optuna.Study, space: search_space.SearchSpace, n: int, results: list
    ) -> int:
        """Ask ``n`` trials, launch their jobs, tell each result; the number that failed.

        Interrupted (Ctrl-C, a launcher error), no trial of the batch is left RUNNING.
        """
        batch = [self._ask(study, space) for _ in range(n)]
        told: set[int] = set()
        failed = 0
        try:
            with self._beating([trial.number for trial, _ in batch]):
                returns = self.launcher.launch(
                    [overrides for _, overrides in batch], initial_job_idx=self.job_idx
                )
            self.job_idx += len(batch)
            for i, (trial, _) in enumerate(batch):
                ret = returns[i] if i < len(returns) else None
                failed += self._tell(study, trial, ret) == TrialState.FAIL
                told.add(trial.number)
                if ret is not None:
                    results.append(ret)
        finally:
            for trial, _ in batch:
                if trial.number not in told:
                    self._fail(study, trial, "sweep interrupted")
        return failed

    def _check_failures(self, study: optuna.Study, failed: int) -> None:
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


def _print_best(study: optuna.Study) -> None:
    from losslab.search.report import best_trials

    states = [t.state for t in study.trials]
    counts = ", ".join(
        f"{states.count(state)} {state.name.lower()}"
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    )
    best = best_trials(study)
    if not best:
        log.info("%d trials (%s); none complete", len(states), counts)
        return
    values = " ".join(_brief(v) for v in best[0].values)
    params = " ".join(f"{key}={_brief(value)}" for key, value in best[0].params.items())
    log.info(
        "%d trials (%s); best trial %d: %s; %s", len(states), counts, best[0].number, values, params
    )


def _brief(value: object) -> str:
    """3 significant digits for people; the exact values are in the study and the runs."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class _ParentRun:
    """The MLflow parent run that losslab's Hydra callback made for this sweep."""

    def __init__(self, uri: str, run_id: str) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(uri)
        self.run_id = run_id

    @classmethod
    def of(cls, config: DictConfig, sweep_dir: Path) -> _ParentRun | None:
        from losslab.tracking.sweep import read_parent_id

        tracking = config.get("tracking")
        if not tracking or not tracking.get("enabled", False):
            return None
        run_id = read_parent_id(sweep_dir)
        return cls(tracking.uri, run_id) if run_id else None

    def start(
        self, study: optuna.Study, sweeper: OptunaSweeperImpl, space: search_space.SearchSpace
    ) -> None:
        from losslab.search.report import log_study_start

        log_study_start(
            self.client,
            self.run_id,
            study,
            sweeper.storage_url or "",
            space.distributions,
            sweeper.n_trials,
        )

    def end(self, study: optuna.Study, failed: BaseException | None = None) -> None:
        from losslab.search.report import log_study_end
        from losslab.tracking.redact import redact_text

        try:
            log_study_end(self.client, self.run_id, study)
        except Exception as err:  # the study's outcome matters more than its report
            log.warning("could not record the study in MLflow: %s", err)
        if failed is not None:
            status = "KILLED" if isinstance(failed, KeyboardInterrupt) else "FAILED"
            self.client.set_tag(
                self.run_id, "losslab.error", redact_text(f"{type(failed).__name__}: {failed}")
            )
            self.client.set_terminated(self.run_id, status)
