"""Every tag key losslab writes on a run, spelt once: what each says, and who reads it.

Runs are found and told apart by these (``losslab compare``, the dead-run check, replay, the
MLflow UI's filters), so a key spelt twice that drifts apart loses runs silently.
"""

from __future__ import annotations

# what a run is
RUN_TYPE = "losslab.run_type"  # single | job | sweep
JOB_NAME = "losslab.job_name"
JOB_NUM = "losslab.job_num"  # the job's number in its multirun
OVERRIDES = "losslab.overrides"  # the command line's overrides, space-separated
GROUP = "losslab.group"  # a multirun job's overrides but its seed: repeats share it
DATA = "losslab.data"
TASK = "losslab.task"  # binary | multiclass | multilabel
DATA_FINGERPRINT = "losslab.data_fingerprint"  # a hash of every array: same data, same hash
OBJECTIVE = "losslab.objective"  # the objective names, comma-separated
SLURM_JOB_ID = "losslab.slurm_job_id"  # 123_4: task 4 of array job 123

# a sweep's parent
SWEEP_DIR = "losslab.sweep_dir"
SWEEPER = "losslab.sweeper"
LAUNCHER = "losslab.launcher"
CONTINUES = "losslab.continues"  # the parent of the command that ran the study before
SHARED_OVERRIDES = "losslab.shared_overrides"  # JSON list every job of the sweep gets
RECORDED_IN = "losslab.recorded_in"  # a launcher's run: where its jobs are recorded

# how a run ended, and whether it still lives
OUTCOME = "losslab.outcome"  # pruned, ... beside MLflow's status
PRUNED = "losslab.pruned"
PRUNED_REASON = "losslab.pruned_reason"
ERROR = "losslab.error"  # why a run ended FAILED or KILLED
PROCESS = "losslab.process"  # host:pid of the process that records the run
HEARTBEAT = "losslab.heartbeat"  # when that process last said it lives
SPILL_DIR = "losslab.spill_dir"  # where the run spills if its store goes away
ENDED_AS_DEAD = "losslab.ended_as_dead"  # the reason, when another process ended the run
DEGENERATE = "losslab.degenerate"  # why the model is no model (constant validation predictions)

# Optuna's side, on trials' runs and on a sweep's parent
STUDY_NAME = "optuna.study_name"
TRIAL_NUMBER = "optuna.trial_number"
