"""Worker mode (``hydra.sweeper.workers=N``): N submitit jobs that each pull trials.

The sweeper submits N jobs through the launcher's submitit executor (local processes with
``hydra/launcher=submitit_local``, a Slurm job array with a Slurm launcher). Each runs a
:class:`Worker`: :func:`losslab.search.worker.pull` with the sweeper's own ask and tell, and
each trial's job composed and run in the worker's process exactly as the launcher runs a
batch's job (its ``__call__``: the sweep config of the trial's overrides, Hydra's
``run_job`` and callbacks, so the trial's MLflow run nests under the sweep's parent run).
The command waits, printing a line per finished trial, and ends once every worker ended.

A worker told to stop (SIGTERM from Slurm's preemption or ``scancel``, submitit's time-limit
signal, SIGHUP, Ctrl-C, which is how submitit's local jobs are cancelled) ends its trial's
run KILLED (the job's own handling), fails its trial as infrastructure and queues its params
again for the next free worker, then ends; on submitit's preemption signal it first asks
Slurm to queue its own job again while the study wants trials.
"""

from __future__ import annotations

import copy
import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any

import optuna
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn
from omegaconf import OmegaConf
from optuna.trial import TrialState

from hydra_plugins.losslab_optuna_sweeper import samplers
from losslab.search.status import N_TRIALS_ATTR, follow_line, remember_workers
from losslab.search.storage import open_storage
from losslab.search.worker import FINISHED, INFRASTRUCTURE_ATTR, POLL_S, Trials, counted, pull

if TYPE_CHECKING:
    from hydra_plugins.losslab_optuna_sweeper._impl import OptunaSweeperImpl
    from hydra_plugins.losslab_optuna_sweeper.search_space import SearchSpace

log = logging.getLogger(__name__)

CANCEL_WAIT_S = 60  # for cancelled workers to queue their trials again


class Worker:
    """One worker job: the sweeper's settings and search space, pickled to where it runs."""

    def __init__(self, impl: OptunaSweeperImpl, space: SearchSpace, index: int) -> None:
        self.impl = impl
        self.space = space
        self.index = index
        self.singleton_state = Singleton.get_state()  # what Hydra knew when it was submitted

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the sweeper's storage and sampler (a connection; a sampler whose
        ``after_trial`` is wrapped): the worker opens its own (:meth:`open_study`)."""
        impl = copy.copy(self.impl)
        impl.storage = impl.sampler = None
        return {**self.__dict__, "impl": impl}

    def __call__(self) -> int:
        """Pull trials until the study has its ``n_trials``; how many this worker ran."""
        from hydra.core.utils import setup_globals

        Singleton.set_state(self.singleton_state)  # the sweep's config resolves as it did
        setup_globals()
        return self.work(self.run_job)

    def work(self, job: Any, poll_s: float = POLL_S) -> int:
        """:meth:`__call__` with ``job(overrides, number) -> JobReturn`` running each trial.
        Stopped by submitit's preemption signal (Slurm's warning before a time limit) while
        the study still wants trials, a worker on Slurm asks to be queued again
        (:func:`requeue_on_slurm`), so the sweep keeps its N workers. Not on SIGTERM: that is
        also ``scancel`` and Ctrl-C on the waiting command, and Slurm would requeue even a
        cancelled job; Slurm's own preemption requeues the job itself where so configured."""
        from losslab.process import Terminated, terminations_as_interrupts

        study = self.open_study()
        try:
            with terminations_as_interrupts(preemption_signal()):
                return len(pull(study, self.impl.n_trials, self.trials(study, job), poll_s))
        except Terminated as stop:
            if stop.signum == preemption_signal() and counted(study, FINISHED) < self.impl.n_trials:
                requeue_on_slurm()
            raise

    def open_study(self) -> optuna.Study:
        """The sweep's study, with this worker's own connection and sampler."""
        impl = self.impl
        impl.storage = open_storage(
            impl.storage_url, impl.heartbeat_interval, impl.grace_period, impl.max_retry
        )
        study = optuna.load_study(
            study_name=impl.study_name, storage=impl.storage, pruner=impl.pruner
        )
        study.sampler = impl.sampler = samplers.for_worker(
            impl.sampler_config,
            self.space.distributions,
            len(study.trials),
            impl.n_trials,
            self.index,
        )
        impl._fail_stale(study)  # trials of workers killed before this one started
        return study

    def trials(self, study: optuna.Study, job: Any) -> Trials:
        """The sweeper's ask, tell and requeue for ``study``; ``job(overrides, number)`` runs
        one trial's job and returns its ``JobReturn``."""
        impl = self.impl
        return Trials(
            ask=lambda: impl._ask(study),
            run=lambda trial: self.run(study, trial, job),
            requeue=lambda trial, reason: impl._queue_again(study, trial, reason),
            fail=lambda trial, reason: impl._fail(study, trial, reason),
            stop=lambda: self.stop(study),
            idle=lambda: impl._fail_stale(study),
        )

    def run(self, study: optuna.Study, trial: Any, job: Any) -> TrialState:
        """One trial: its overrides drawn as batch mode draws them, its job run while the
        worker beats for it, its result told as batch mode tells it."""
        from hydra_plugins.losslab_optuna_sweeper._impl import DrawError
        from losslab.process import interruption, sent_since, signals_sent

        impl = self.impl
        try:
            overrides = impl._overrides(trial, self.space)
        except DrawError as err:  # a bad draw fails its trial, the worker goes on
            return impl._fail(study, trial, str(err))
        before = signals_sent()
        with impl._beating([trial.number]):
            ret = job(overrides, trial.number)
        stopped = sent_since(before)
        if stopped is not None:
            # the job caught the signal's exception or a library turned it into its own
            # error (psycopg's cancelled query, as Optuna's storage error): not the trial's
            raise interruption(stopped)
        return impl._tell(study, trial, ret)

    def stop(self, study: optuna.Study) -> bool:
        """Raises ``SweepFailed`` past ``max_failure_rate`` (the study's failed trials) or
        after several trials in a row its store could not record; stops once a brute-force
        space is done and nothing waits. Not for a grid: ``n_trials`` is capped to its points,
        and a point queued again must still run after every point has been drawn."""
        sampler = self.impl.sampler
        self.impl._check_failures(study, counted(study, (TrialState.FAIL,)))
        if samplers.grid_size(sampler) is not None or not samplers.exhausted(sampler):
            return False
        return not study.get_trials(deepcopy=False, states=(TrialState.WAITING,))

    def run_job(self, overrides: list[str], number: int) -> JobReturn:
        """The trial's job in this process, as the submitit launcher runs a batch's job (not
        the Slurm launcher's own ``__call__``, which ends the process after one job)."""
        from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher

        launcher = self.impl.launcher
        key = "hydra.sweep.dir"
        state = self.singleton_state
        return BaseSubmititLauncher.__call__(
            launcher, overrides, key, number, f"job_id_for_{number}", state
        )


def preemption_signal() -> int:
    """The signal submitit has Slurm send before a time limit or a preemption (USR2 unless
    ``SUBMITIT_PREEMPT_SIGNAL`` says otherwise). submitit's own handler would raise inside
    the trial's job (an error its trial would be counted for) or exit; a worker takes it as
    SIGTERM: the trial's params are queued again and the worker ends."""
    return getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"))


def requeue_on_slurm() -> bool:
    """Ask Slurm to queue this job again, as submitit does for a checkpointable job on its
    preemption signal (``scontrol requeue``; the job is then killed and starts over, and its
    worker pulls trials again). Whether Slurm took it; never for a local job."""
    import subprocess

    import submitit

    try:
        env = submitit.JobEnvironment()
    except RuntimeError:  # not a submitit job
        return False
    if env.cluster != "slurm":
        return False
    command = ["scontrol", "requeue", env.job_id]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("Slurm job %s was not queued again: %s", env.job_id, err)
        return False
    if done.returncode != 0:
        why = done.stderr.strip() or f"exit code {done.returncode}"
        log.warning("Slurm job %s was not queued again: %s", env.job_id, why)
        return False
    log.info("asked Slurm to queue job %s again: its worker will pull trials again", env.job_id)
    return True


def executor(launcher: Any) -> Any:
    """The submitit executor the launcher submits a batch with, its options included."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    kind = launcher._EXECUTOR
    params = dict(launcher.params)
    folder = params.pop("submitit_folder")
    timeouts = {f"{kind}_max_num_timeout": params.pop("max_num_timeout", 0)}
    built = submitit.AutoExecutor(cluster=kind, folder=folder, **timeouts)
    shared = set(OmegaConf.structured(BaseQueueConf).keys())
    built.update_parameters(**{k if k in shared else f"{kind}_{k}": v for k, v in params.items()})
    return built


def sweep(impl: OptunaSweeperImpl, study: optuna.Study, space: SearchSpace) -> bool:
    """Submit ``impl.workers`` workers and wait for them, a line per finished trial; raises
    ``SweepFailed`` when they ended short of ``n_trials`` or past ``max_failure_rate``.
    Detached, returns False at once (the study goes on without this command)."""
    study.set_user_attr(N_TRIALS_ATTR, impl.n_trials)  # for `losslab sweep status`
    submit = executor(impl.launcher)
    with submit.batch():
        jobs = [submit.submit(Worker(impl, space, i)) for i in range(impl.workers)]
    remember_workers(study, impl.launcher._EXECUTOR, [job.job_id for job in jobs])
    ids = " ".join(str(job.job_id) for job in jobs)
    print(f"study {impl.study_name}: {impl.workers} workers (jobs {ids})", flush=True)
    if impl.detach:
        print(follow_line(impl.study_name, impl.storage_url), flush=True)
        return False
    try:
        idle = watch(study, jobs, impl.n_trials)
    except KeyboardInterrupt:
        cancel(jobs)
        raise
    ended = worker_errors([job for job in jobs if job not in idle])
    impl._check_failures(study, counted(study, (TrialState.FAIL,)))
    finished = counted(study, FINISHED)
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    if finished < impl.n_trials and (ended or waiting):  # else: a brute-force space is done
        from hydra_plugins.losslab_optuna_sweeper._impl import SweepFailed

        raise SweepFailed(
            f"the workers ended with {finished} of n_trials={impl.n_trials} trials finished "
            f"({ended or 'no error'}); run the same command to go on"
        )
    if ended:  # the others finished the study
        log.warning("workers that ended early: %s", ended)
    return True


def watch(study: optuna.Study, jobs: list, n_trials: int, poll_s: float = POLL_S) -> list:
    """Until every job ended: a line for each trial that finished meanwhile. Once the study
    is done, a worker still waiting in the queue (Slurm requeued it after a preemption) is
    cancelled rather than waited for: it would only start and find nothing to do. The
    workers cancelled so."""
    told: set[int] = {t.number for t in study.get_trials(deepcopy=False, states=FINISHED)}
    finished = counted(study, FINISHED)
    idle: list = []
    while True:
        if finished >= n_trials:
            idle += cancel_queued([job for job in jobs if job not in idle])
        ended = all(job.done() for job in jobs)
        for trial in study.get_trials(deepcopy=False, states=FINISHED):
            if trial.number not in told:
                told.add(trial.number)
                finished += not trial.user_attrs.get(INFRASTRUCTURE_ATTR)
                print(progress(trial, finished, n_trials), flush=True)
        if ended:
            return idle
        time.sleep(poll_s)


def cancel_queued(jobs: list) -> list:
    """The jobs among ``jobs`` that wait in the scheduler's queue, cancelled."""
    queued = [job for job in jobs if not job.done() and job.state in ("PENDING", "REQUEUED")]
    for job in queued:
        job.cancel(check=False)
    return queued


def progress(trial: optuna.trial.FrozenTrial, finished: int, n_trials: int) -> str:
    """``trial 3 COMPLETE 0.8123 (4/12 finished)``; a failed trial with its reason."""
    state = trial.state.name
    if trial.values is not None:
        state += " " + ", ".join(f"{v:.4g}" for v in trial.values)
    elif trial.state == TrialState.FAIL:
        again = ", queued again" if trial.user_attrs.get(INFRASTRUCTURE_ATTR) else ""
        reason = trial.user_attrs.get("fail_reason", "?").strip().splitlines() or ["?"]
        state += f" ({reason[0][:200]}{again})"
    return f"trial {trial.number} {state} ({finished}/{n_trials} finished)"


def cancel(jobs: list) -> None:
    """Stop the workers (each queues its trial again) and wait a while for them to end."""
    for job in jobs:
        try:
            job.cancel(check=False)
        except Exception as err:  # already ended, or the scheduler is away
            log.warning("could not cancel worker %s: %s", job.job_id, err)
    deadline = time.monotonic() + CANCEL_WAIT_S
    while time.monotonic() < deadline and not all(job.done() for job in jobs):
        time.sleep(0.5)


def worker_errors(jobs: list) -> str:
    """The last line of each worker's error, if any ended with one."""
    lines = []
    for job in jobs:
        error = job.exception()
        if error is not None:
            lines.append(f"worker {job.job_id}: {last_error_line(str(error))[:200]}")
    return "; ".join(lines)


def last_error_line(message: str) -> str:
    """The exception's own line in submitit's report of a failed job (its traceback between
    two rules of dashes, then where its logs are)."""
    parts = [p.strip() for p in message.split("-" * 22)]
    body = parts[1] if len(parts) >= 3 else message
    lines = [ln for ln in body.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else message.strip()
