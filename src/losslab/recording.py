"""What a run records, from its parts, for the pipeline and the public callback alike.

At its start (:func:`start_run`, :func:`record_start`): tags, name, parent, params and the
config files. At its end (:func:`record_end` for a pipeline job, :func:`record` for what
:class:`losslab.keras.MlflowLogger` is asked to keep): scores, epochs, the evaluation files in
one shape, plots, the model. The threshold rule is losslab's (the highest minority recall at a
false-positive rate of at most ``max_fpr``), the plots are losslab's.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from losslab.tracking import tag_keys

if TYPE_CHECKING:
    from losslab.config import TrainConfig
    from losslab.data import Dataset

log = logging.getLogger(__name__)

EXAMPLE_ROWS = 5


@dataclass
class JobInfo:
    """What Hydra knows about the job, as plain values."""

    name: str = "train"
    num: int | None = None
    overrides: Sequence[str] = ()
    sweep_dir: str | None = None
    hydra_dir: str | None = None
    pruner: Any = None  # hydra.sweeper.pruner of an Optuna sweep
    tags: dict[str, str] = field(default_factory=dict)


# -- a pipeline job's run ----------------------------------------------------------------
def start_run(conf: TrainConfig, job: JobInfo, ds: Dataset, offline_because: str | None):
    """The job's :class:`~losslab.tracking.run.TrackedRun`: its tags (what data, which job,
    which sweep), its name, nested under the sweep's parent, spilling per ``conf.tracking``."""
    import os

    from losslab.tracking.run import (
        MLFLOW_RUN_ID_ENV,
        Liveness,
        RunStart,
        TrackedRun,
        git_commit,
    )
    from losslab.tracking.scheduler import scheduler_tags
    from losslab.tracking.spill import SPILL_DIR
    from losslab.tracking.sweep import read_parent_id

    parent = read_parent_id(job.sweep_dir) if job.sweep_dir else None
    given = None if job.sweep_dir else os.environ.get(MLFLOW_RUN_ID_ENV)
    tags = {
        tag_keys.RUN_TYPE: "job" if parent else "single",
        tag_keys.JOB_NAME: job.name,
        tag_keys.OVERRIDES: " ".join(job.overrides),
        tag_keys.DATA: ds.name,
        tag_keys.TASK: ds.task,
        tag_keys.DATA_FINGERPRINT: ds.fingerprint(),
        "mlflow.source.name": "train.py",
        **scheduler_tags(),
        **job.tags,
        **conf.tags,
    }
    if job.num is not None:
        from losslab.repeats import group_of

        tags[tag_keys.JOB_NUM] = str(job.num)
        tags[tag_keys.GROUP] = group_of(job.overrides)
    commit = git_commit(Path(__file__).parent)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    start = RunStart(
        run_name=run_name(conf, job, parent if offline_because is None else None),
        parent_run_id=parent,
        tags=tags,
        artifact_location=conf.tracking.artifact_location,
        run_id=given,
    )
    liveness = Liveness(
        spill_dir=Path(conf.paths.output_dir) / SPILL_DIR,
        offline_after_s=conf.tracking.offline_after_s,
        heartbeat_s=conf.tracking.heartbeat_s,
        stale_after_s=conf.tracking.stale_after_s,
        start_offline=offline_because,
    )
    return TrackedRun(
        conf.tracking.uri, conf.tracking.experiment or conf.task_name, start, liveness
    )


def run_name(conf: TrainConfig, job: JobInfo, parent: str | None) -> str:
    """What tells this run apart (:mod:`losslab.tracking.names`): a sweep's job by what it
    varies, read against the overrides its parent says every job shares."""
    import json

    from mlflow import MlflowClient

    from losslab.tracking import names
    from losslab.tracking.patience import Patience

    if job.num is None:
        return names.single_name(job.overrides)
    shared: list[str] = []
    if parent is not None:
        client, patience = MlflowClient(conf.tracking.uri), Patience(conf.tracking.uri, 5.0)
        try:  # a store gone since it was checked costs seconds here, not MLflow's minutes
            tags = patience.call(lambda: client.get_run(parent).data.tags)
            shared = json.loads(tags.get(tag_keys.SHARED_OVERRIDES, "[]"))
        except Exception as err:  # the name is a convenience; the run matters more
            log.debug("shared overrides of sweep %s not read: %s", parent, err)
    return names.job_name(job.num, job.overrides, shared)


def record_start(tracked, raw: DictConfig, job: JobInfo) -> None:
    """The composed config as params and as YAML, the overrides, Hydra's own files."""
    import yaml

    plain = OmegaConf.to_container(raw, resolve=True, enum_to_str=True)
    plain.pop("hydra", None)
    tracked.log_params(plain)
    tracked.log_yaml(plain, "config/config.yaml")
    tracked.log_yaml(list(job.overrides), "config/overrides.yaml")
    if job.hydra_dir and Path(job.hydra_dir).is_dir():
        for path in sorted(Path(job.hydra_dir).glob("*.yaml")):
            tracked.log_yaml(yaml.safe_load(path.read_text()), f"config/hydra/{path.name}")


@dataclass(frozen=True)
class RunEnd:
    """What a pipeline job knows once training is over."""

    evaluation: Any
    history: dict[str, list[float]]
    model: Any
    objective: tuple[float, ...]  # one value per objective
    epochs_run: Sequence[int]  # per fold
    best_epochs: Sequence[int]  # per fold
    example: Any  # the logged model's input example
    raw: Any = None  # data.RawInputs of a source that encodes raw rows (a table)
    degenerate: str | None = None  # why the model is no model (losslab.evaluate.degenerate)


def record_end(tracked, conf: TrainConfig, end: RunEnd) -> None:
    """Everything known once training is over: scores, epochs, plots, the model."""
    history = end.history
    tracked.sync()  # a store away for too long: the rest goes to the spill folder
    first, *more = end.objective
    tracked.log_metrics(
        {
            **end.evaluation.metrics,
            "objective": first,
            **{f"objective_{i}": v for i, v in enumerate(more, start=1)},
            "best_epoch": float(np.mean(end.best_epochs)),
            "epochs_run": float(np.mean(end.epochs_run)),
        }
    )
    if len(end.epochs_run) > 1:
        for k, (run, best) in enumerate(zip(end.epochs_run, end.best_epochs, strict=True)):
            tracked.log_metrics({f"fold_{k}/epochs_run": run, f"fold_{k}/best_epoch": best})
        for epoch in range(len(history["loss"])):  # not the objective: named for what it is
            mean = {f"fold_mean/{key}": values[epoch] for key, values in history.items()}
            tracked.log_metrics(mean, epoch)
    tags = {tag_keys.OBJECTIVE: ",".join(conf.objectives)}
    if end.degenerate is not None:
        tags[tag_keys.DEGENERATE] = end.degenerate
    tracked.set_tags(tags)
    _record_evaluation(tracked, conf, end)
    if conf.tracking.log_model:
        if end.raw is None:
            tracked.log_model(end.model, end.example)
        else:  # the model takes the table's own rows and encodes them itself
            tracked.log_model(end.model, end.raw.example, end.raw.encoding)


def _record_evaluation(tracked, conf: TrainConfig, end: RunEnd) -> None:
    from losslab import models, plots
    from losslab.evaluate import curve_points

    ev = end.evaluation
    tracked.log_text(models.summary_text(end.model), "model_summary.txt")
    log_confusion(tracked, ev)
    tracked.log_text(json.dumps(curve_points(ev)), "evaluation/curves.json")
    plot_dir = Path(conf.paths.output_dir) / "plots"
    plot_dir.mkdir(exist_ok=True)
    plots.learning_curves(end.history, plot_dir / "learning_curves.png")
    _evaluation_plots(ev, plot_dir)
    tracked.log_artifacts(plot_dir, "plots")


def log_confusion(tracked, ev) -> None:
    """``evaluation/confusion_matrix.json``: the class names, the matrix at the chosen
    threshold (rows true, columns predicted), the threshold, and the matrix at 0.5 when the
    threshold is another."""
    confusion = {
        "labels": ev.class_names,
        "at_threshold": ev.confusion.tolist(),
        "threshold": ev.threshold,
    }
    if getattr(ev, "confusion_at_half", None) is not None:
        confusion["at_0.5"] = ev.confusion_at_half.tolist()
    tracked.log_text(json.dumps(confusion, indent=2), "evaluation/confusion_matrix.json")


def _evaluation_plots(ev, folder: Path) -> None:
    from losslab import plots

    plots.confusion_matrix(ev, folder / "confusion_matrix.png")
    plots.roc_curve(ev, folder / "roc_curve.png")
    plots.pr_curve(ev, folder / "pr_curve.png")


def print_ui_hint(conf: TrainConfig, tracked) -> None:
    from losslab.tracking.redact import redact_text
    from losslab.tracking.run import ui_url

    if tracked.offline:  # its closing line says where it is kept instead
        return
    url = ui_url(conf.tracking.uri, tracked.experiment_id, tracked.run_id)
    if url:
        print(f"MLflow run: {redact_text(url)}")
    elif conf.tracking.ui_hint:
        print(f"MLflow run {tracked.run_id}; see it with:\n  {redact_text(conf.tracking.ui_hint)}")


# -- what the public callback is asked to record at train end -----------------------------
@dataclass(frozen=True)
class AtTrainEnd:
    """``model``: the model with signature and input example (from ``input_example``, else the
    first rows of ``validation_data``); ``plots``: learning curves, and with
    ``validation_data`` the confusion matrix, ROC and PR curves and the chosen threshold;
    ``model_config``: the model's Keras config and summary as artifacts."""

    model: bool = False
    plots: bool = False
    model_config: bool = False
    validation_data: tuple[Any, Any] | None = None
    input_example: Any = None
    max_fpr: float = 0.01

    def check(self) -> None:
        """Before training: what cannot be done at its end is refused now."""
        if self.model and self.input_example is None and self.validation_data is None:
            raise ValueError(
                "log_model=True needs an input_example or validation_data: the logged model's "
                "signature and example are taken from it"
            )
        if self.validation_data is not None and len(self.validation_data) != 2:
            raise ValueError("validation_data must be a pair (x_val, y_val)")
        if not 0 < self.max_fpr < 1:
            raise ValueError(f"max_fpr={self.max_fpr}: a false-positive rate in (0, 1)")

    def example(self) -> Any:
        if self.input_example is not None:
            return self.input_example
        return np.asarray(self.validation_data[0])[:EXAMPLE_ROWS]


def record(tracked, model, history: dict[str, list[float]], at_end: AtTrainEnd) -> None:
    """Everything ``at_end`` asks for, into ``tracked`` (stored, or spilled with the run)."""
    if at_end.model_config:
        _record_config(tracked, model)
    if at_end.plots:
        with tempfile.TemporaryDirectory(prefix="losslab-plots-") as folder:
            _record_plots(tracked, model, history, at_end, Path(folder))
    if at_end.model:
        tracked.log_model(model, at_end.example())


def _record_config(tracked, model) -> None:
    from losslab.models import summary_text

    tracked.log_text(json.dumps(model.get_config(), indent=2, default=str), "model/config.json")
    tracked.log_text(summary_text(model), "model/summary.txt")


def _record_plots(tracked, model, history, at_end: AtTrainEnd, folder: Path) -> None:
    from losslab import plots

    if history:
        plots.learning_curves(history, folder / "learning_curves.png")
    if at_end.validation_data is not None:
        evaluation = _judge_validation(tracked, model, at_end)
        if evaluation is not None:
            _evaluation_plots(evaluation, folder)
    tracked.log_artifacts(folder, "plots")


def _judge_validation(tracked, model, at_end: AtTrainEnd):
    """Validation scores at the threshold chosen on it, as metrics; its confusion matrix as
    JSON. None (with a log line) where validation cannot be judged so."""
    from losslab.config import EvaluationConfig
    from losslab.evaluate import EvaluationError, evaluate_validation
    from losslab.predict import scores

    x, y = at_end.validation_data
    y = np.asarray(y)
    p = scores(model, x)
    try:
        evaluation = evaluate_validation(y, p, ["0", "1"], EvaluationConfig(max_fpr=at_end.max_fpr))
    except (EvaluationError, ValueError) as err:
        log.warning("validation not judged: %s", err)
        return None
    tracked.log_metrics(evaluation.metrics)
    log_confusion(tracked, evaluation)
    return evaluation
