"""The batch scheduler's id for the job a run is recorded from, so that a run leads to its
job (``scontrol show job``, ``sacct -j``, the job's log) and a cancelled job to its run."""

from __future__ import annotations

import os
from collections.abc import Mapping

from losslab.tracking import tag_keys


def slurm_job_id(env: Mapping[str, str] = os.environ) -> str | None:
    """``123_4`` for task 4 of array job 123 (as squeue, scancel and submitit write it), else
    ``SLURM_JOB_ID``; None outside Slurm."""
    array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return env.get("SLURM_JOB_ID") or None


def scheduler_tags(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    job = slurm_job_id(env)
    return {tag_keys.SLURM_JOB_ID: job} if job else {}
