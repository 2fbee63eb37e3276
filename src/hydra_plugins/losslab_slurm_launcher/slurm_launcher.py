"""submitit's Slurm launcher, each job of a batch with an outcome of its own.

hydra-submitit-launcher waits for a batch's jobs in turn and raises the first error it meets:
one job that Slurm cancelled, killed or timed out would fail every trial of the batch, the
others still running, and end the sweep. This launcher submits the same job array with the
same options, then hands back one ``JobReturn`` per job: the job's own, or a FAILED one whose
error is :class:`losslab.search.heartbeat.JobLost` when the job ended without a result. The
Optuna sweeper fails that trial alone and, with ``hydra.sweeper.max_retry``, runs its params
again.

Hydra imports this module at every start: submitit and losslab load once a batch launches.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
        SlurmLauncher as SubmititSlurmLauncher,
    )
except ImportError:  # no `launchers` extra: nothing to extend, and no plugin to register
    SubmititSlurmLauncher = object

log = logging.getLogger(__name__)

# options of the executor rather than of each job, as hydra-submitit-launcher reads them
EXECUTOR_OPTIONS = ("submitit_folder", "max_num_timeout")


class SlurmLauncher(SubmititSlurmLauncher):
    """Options as ``hydra/launcher=submitit_slurm`` (conf/hydra/launcher/slurm_gpu.yaml)."""

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> list[JobReturn]:
        jobs = self._submit(job_overrides, initial_job_idx)
        return [outcome(job, overrides) for job, overrides in zip(jobs, job_overrides, strict=True)]

    def __call__(self, *args: Any) -> JobReturn:
        """One job, in the Slurm job's own process, which ends once submitit has its result."""
        from losslab.process import then_exit

        return then_exit(lambda: super(SlurmLauncher, self).__call__(*args))

    def _submit(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
        """The batch as one Slurm job array; its submitit jobs."""
        import submitit

        assert self.config is not None
        executor = submitit.AutoExecutor(
            cluster="slurm",
            folder=self.params["submitit_folder"],
            slurm_max_num_timeout=self.params.get("max_num_timeout", 0),
        )
        executor.update_parameters(**self._job_options())
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        calls = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            state = Singleton.get_state()
            calls.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", state))
        return executor.map_array(self, *zip(*calls, strict=True))

    def _job_options(self) -> dict[str, Any]:
        """Each job's options: submitit's shared names as they are, the rest ``slurm_*``."""
        from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        return {
            key if key in shared else f"slurm_{key}": value
            for key, value in self.params.items()
            if key not in EXECUTOR_OPTIONS
        }


def outcome(job: Any, overrides: Sequence[str]) -> JobReturn:
    """The job's ``JobReturn``; a FAILED one holding why when the job returned none."""
    from submitit.core.utils import UncompletedJobError

    from losslab.search.heartbeat import JobLost

    try:
        return job.results()[0]
    except UncompletedJobError:
        error: BaseException = JobLost(
            f"Slurm job {job.job_id} ended {job.state} without a result (log: {job.paths.stderr})"
        )
    except Exception as err:  # raised outside Hydra's run_job, e.g. loading the job
        error = err
    log.warning("job %s: %s: %s", job.job_id, type(error).__name__, error)
    return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=error)
