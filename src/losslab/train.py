"""The one place that wires data, imbalance remedy, model, loss, training, evaluation and
MLflow together. Everything is checked before the first batch: config values, the loss's
arguments, the data, and that loss, remedy and task fit each other.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from losslab import backend, objectives
from losslab import config as config_lib
from losslab.config import TrainConfig

log = logging.getLogger(__name__)


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


@dataclass
class Result:
    objective: float | tuple[float, ...]  # a tuple for several objectives
    run_id: str | None
    metrics: dict[str, float]
    history: dict[str, list[float]]
    evaluation: Any
    model: Any
    dataset: Any
    model_uri: str | None = None  # the MLflow logged model, when one was logged


def job_info() -> JobInfo:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return JobInfo()
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    return JobInfo(
        name=hc.job.name,
        num=hc.job.num if multirun else None,
        overrides=list(hc.overrides.task),
        sweep_dir=hc.sweep.dir if multirun else None,
        hydra_dir=str(Path(hc.runtime.output_dir) / hc.output_subdir) if hc.output_subdir else None,
        pruner=hc.sweeper.get("pruner") if multirun else None,
    )


def _verbose(setting: str) -> int:
    """Keras' own output: none for ``auto`` (losslab's epoch line takes its place)."""
    return 0 if setting == "auto" else int(setting)


def _limit_threads(threads: int) -> None:
    """The backend's CPU threads for this job. TensorFlow fixes its pools at first use (a
    later job in the process keeps them); JAX fixes XLA's when it starts, so there it is
    refused, before any data is loaded."""
    if not threads:
        return
    import keras

    name = keras.backend.backend()
    if name == "torch":
        import torch

        torch.set_num_threads(threads)
        return
    if name != "tensorflow":
        raise config_lib.ConfigError(
            f"trainer.threads={threads} cannot be applied under KERAS_BACKEND={name} (XLA "
            "sizes its CPU thread pool when it starts); use trainer.threads=0, or limit the "
            "process's CPUs (taskset, a Slurm --cpus-per-task)"
        )
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        current = tf.config.threading.get_intra_op_parallelism_threads()
        if current != threads:
            log.warning(
                "TensorFlow already runs %s threads; trainer.threads=%d ignored",
                current or "all",
                threads,
            )


def _optimizer(cfg: config_lib.OptimizerConfig):
    import keras

    common = {"learning_rate": cfg.lr, "clipnorm": cfg.clipnorm}
    if cfg.name == "sgd":
        return keras.optimizers.SGD(momentum=cfg.momentum, nesterov=cfg.nesterov, **common)
    if cfg.name == "rmsprop":
        return keras.optimizers.RMSprop(momentum=cfg.momentum, **common)
    if cfg.name == "adamw":
        return keras.optimizers.AdamW(weight_decay=cfg.weight_decay or 0.004, **common)
    return keras.optimizers.Adam(weight_decay=cfg.weight_decay, **common)


@dataclass
class Setup:
    """One job's checked inputs: config, data (one dataset per validation fold), loss, remedy."""

    conf: TrainConfig
    ds: Any
    folds: list[Any]
    loss: Any
    prepared: Any
    one_hot: bool
    epoch_keys: list[str]


@dataclass
class FoldFit:
    """One trained model with its epoch history and its predictions on its validation fold."""

    model: Any
    history: dict[str, list[float]]
    best_epoch: int
    p_val: np.ndarray


def _configs(cfg: DictConfig | TrainConfig) -> tuple[TrainConfig, DictConfig]:
    """The validated objects and the composed config (for params and the config artifact)."""
    if isinstance(cfg, DictConfig):
        return config_lib.to_objects(cfg), cfg
    return cfg, OmegaConf.structured(cfg)


def prepare(conf: TrainConfig) -> Setup:
    """Load the data and check that data, loss, remedy, objective and validation fit together,
    before any run is recorded or batch trained."""
    from losslab import data, imbalance, losses

    ds = data.load(conf.data, conf.seed, Path(conf.paths.root_dir))
    losses.check_task(conf.loss, ds.task)
    prepared = imbalance.prepare(conf.imbalance, ds.y_train, ds.task)
    one_hot = losses.wants_one_hot(conf.loss, ds.task)
    folds = data.folds(ds, conf.data, conf.seed)
    setup = Setup(
        conf,
        ds,
        folds,
        losses.get(conf.loss, ds.y_train),
        prepared,
        one_hot,
        _epoch_keys(ds, one_hot),
    )
    _check(setup)
    return setup


def check_arguments(conf: TrainConfig) -> None:
    """What Keras must judge (the activation, the loss and its arguments), before any data
    is loaded or store opened."""
    from losslab import losses, models

    models.check(conf.model)
    losses.get(conf.loss)


def check_store(conf: TrainConfig) -> str | None:
    """The tracking store, asked before the data is loaded: None when it answers; why not
    when ``tracking.if_unreachable=offline`` lets the run start spilling; else an error that
    names the URI and the fix."""
    from losslab.tracking import reachable

    tracking = conf.tracking
    reachable.check_artifact_location(tracking.artifact_location)
    why = reachable.store_error(tracking.uri)
    if why is None or tracking.if_unreachable == "offline":
        return why
    raise reachable.unreachable_error(tracking.uri, why)


def _epoch_keys(ds, one_hot: bool) -> list[str]:
    from losslab import metrics

    names = ["loss", *[m.name for m in metrics.for_task(ds.task, ds.n_outputs, one_hot)]]
    keys = [*names, *[f"val_{k}" for k in names]]
    return [*keys, "val_recall_at_fpr"] if ds.task == "binary" else keys


def _check(setup: Setup) -> None:
    from losslab.evaluate import check_judgeable

    conf = setup.conf
    for name in conf.objectives:
        objectives.check_recorded(name, setup.epoch_keys)
    es = conf.trainer.early_stopping
    if es.enabled and es.monitor not in setup.epoch_keys:
        raise config_lib.ConfigError(
            f"trainer.early_stopping.monitor={es.monitor!r} is not recorded every epoch; choose "
            f"one of {sorted(setup.epoch_keys)} or set trainer.early_stopping.enabled=false"
        )
    if setup.ds.task != "binary":
        return
    floor = conf.data.min_val_minority
    for fold in setup.folds:
        if conf.evaluation.threshold != "fixed":
            check_judgeable(fold.y_val, f"evaluation.threshold={conf.evaluation.threshold}", floor)
        for name in filter(objectives.needs_both_classes, conf.objectives):
            check_judgeable(fold.y_val, f"objective={name}", floor)


def _monitor_maximizes(conf: TrainConfig) -> bool:
    """Whether early stopping's monitor is better higher (the objective's direction for it)."""
    es = conf.trainer.early_stopping
    directions = dict(zip(conf.objectives, conf.directions, strict=True))
    objective = es.monitor if es.monitor in directions else None
    return objectives.maximizes(es.monitor, es.mode, objective, directions.get(es.monitor, ""))


def _early_stopping(conf: TrainConfig):
    import keras

    es = conf.trainer.early_stopping
    higher = _monitor_maximizes(conf)
    return keras.callbacks.EarlyStopping(
        monitor=es.monitor,
        mode="max" if higher else "min",
        patience=es.patience,
        min_delta=es.min_delta,
        restore_best_weights=es.restore_best_weights,
    )


def _callbacks(setup: Setup, fold, k: int, tracked, extra: Sequence[Any]) -> list[Any]:
    """Ours first (the validation operating point, then the logger), so every later callback
    (pruning, early stopping) sees what is logged."""
    import keras

    from losslab.metrics import ValidationRecallAtFpr

    conf = setup.conf
    callbacks: list[Any] = []
    if setup.ds.task == "binary":
        callbacks.append(ValidationRecallAtFpr(fold.x_val, fold.y_val, conf.evaluation.max_fpr))
    if tracked is not None:
        from losslab.tracking.callback import MlflowLogger

        callbacks.append(
            MlflowLogger(
                conf.tracking.every_n_batches,
                prefix=f"fold_{k}/" if len(setup.folds) > 1 else "",
                batch_prefix=conf.tracking.batch_prefix,
                samples_per_epoch=len(fold.x_train),
                run=tracked,
            )
        )
    if str(conf.trainer.verbose) == "auto":
        from losslab.console import EpochLine, epoch_keys

        fold = f"fold {k}: " if len(setup.folds) > 1 else ""
        callbacks.append(EpochLine(conf.trainer.epochs, epoch_keys(conf.objectives[0]), fold))
    callbacks.append(keras.callbacks.TerminateOnNaN())
    for callback in extra:
        if hasattr(callback, "start_fold"):
            callback.start_fold(k, conf.trainer.epochs)
        callbacks.append(callback)
    if conf.trainer.early_stopping.enabled:
        callbacks.append(_early_stopping(conf))
    return callbacks


def _fit_arguments(setup: Setup, fold, k: int) -> dict[str, Any]:
    import keras

    from losslab import imbalance

    conf, ds = setup.conf, setup.ds

    def labels(y: np.ndarray) -> np.ndarray:
        return keras.utils.to_categorical(y, ds.n_outputs) if setup.one_hot else y

    args: dict[str, Any] = {
        "class_weight": setup.prepared.class_weight,
        "validation_data": (fold.x_val, labels(fold.y_val)),
        "epochs": conf.trainer.epochs,
        "verbose": _verbose(str(conf.trainer.verbose)),
    }
    if setup.prepared.oversample_fraction is None:
        return {
            **args,
            "x": fold.x_train,
            "y": labels(fold.y_train),
            "batch_size": conf.trainer.batch_size,
            "shuffle": conf.trainer.shuffle,
        }
    augment = None
    if conf.imbalance.augment:
        augment = imbalance.augmenter(conf.imbalance, ds.image_shape, conf.seed + k)
    stream, steps = imbalance.oversampled(
        fold.x_train,
        fold.y_train,
        setup.prepared.oversample_fraction,
        conf.trainer.batch_size,
        conf.seed + k,
        augment,
    )
    return {**args, "x": stream, "steps_per_epoch": steps, "shuffle": False}


def fit_fold(setup: Setup, k: int, tracked, extra: Sequence[Any]) -> FoldFit:
    """Build, compile and fit one model on fold ``k``; predict its validation fold."""
    import keras

    from losslab import metrics, models

    conf, ds, fold = setup.conf, setup.ds, setup.folds[k]
    keras.utils.set_random_seed(conf.seed + k)
    model = models.build(
        conf.model,
        ds.model_shape(),
        setup.prepared.output_bias,
        name=f"{conf.model.kind}_fold_{k}" if len(setup.folds) > 1 else None,
    )
    model.compile(
        optimizer=_optimizer(conf.optimizer),
        loss=setup.loss,
        metrics=metrics.for_task(ds.task, ds.n_outputs, setup.one_hot),
    )
    fit = model.fit(
        **_fit_arguments(setup, fold, k), callbacks=_callbacks(setup, fold, k, tracked, extra)
    )
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    if any(not math.isfinite(v) for v in history.get("loss", [])):
        raise FloatingPointError(
            f"training loss became {history['loss'][-1]} at epoch {len(history['loss'])}"
        )
    return FoldFit(
        model,
        history,
        _best_epoch(history, conf),
        model.predict(fold.x_val, verbose=0, batch_size=4096),
    )


def _best_epoch(history: dict[str, list[float]], conf: TrainConfig) -> int:
    es = conf.trainer.early_stopping
    values = history.get(es.monitor)
    if not es.enabled or not es.restore_best_weights or not values:
        return len(next(iter(history.values()))) - 1
    higher = _monitor_maximizes(conf)
    return int(np.nanargmax(values) if higher else np.nanargmin(values))


def _as_tuple(value: float | tuple[float, ...]) -> tuple[float, ...]:
    return value if isinstance(value, tuple) else (value,)


# an objective recorded every epoch -> the same figure of the delivered rule, computed once
# on its out-of-fold validation scores (so it is the figure of what the job delivers)
DELIVERED = {
    "val_recall_at_fpr": "val_final_recall_at_fpr",
    "val_roc_auc": "val_final_roc_auc",
    "val_pr_auc": "val_final_pr_auc",
}


def objective_value(name: str, metrics: dict[str, float], fits: Sequence[FoldFit]) -> float:
    """An evaluation metric; a ranking or operating-point figure of the delivered rule on its
    out-of-fold validation scores (:data:`DELIVERED`); else the mean over folds of an epoch
    metric at each best epoch (a loss, which the delivered scores do not have)."""
    name = DELIVERED.get(name, name) if DELIVERED.get(name) in metrics else name
    if name in metrics:
        return float(metrics[name])
    if all(name in f.history for f in fits):
        return float(np.mean([f.history[name][f.best_epoch] for f in fits]))
    recorded = sorted([*metrics, *fits[0].history])
    raise KeyError(f"objective={name!r} not found; recorded: {recorded}")


def mean_history(fits: Sequence[FoldFit]) -> dict[str, list[float]]:
    """Each epoch metric averaged over folds, for the epochs every fold ran."""
    if len(fits) == 1:
        return fits[0].history
    n = min(len(next(iter(f.history.values()))) for f in fits)
    return {
        key: np.mean([f.history[key][:n] for f in fits], axis=0).tolist() for key in fits[0].history
    }


def evaluate_fits(setup: Setup, fits: Sequence[FoldFit]):
    """The delivered model and its evaluation: validation scores out of fold, test scores
    from the delivered model itself, so the threshold, the objective and the test figures
    belong to one rule (:mod:`losslab.ensemble`)."""
    from losslab import ensemble
    from losslab.evaluate import evaluate

    ds, conf = setup.ds, setup.conf
    y_val = [f.y_val for f in setup.folds]
    if ds.task == "binary":
        model, p_val = ensemble.delivered([f.model for f in fits], y_val, [f.p_val for f in fits])
    else:
        model, p_val = final_model(fits), np.concatenate([f.p_val for f in fits])
    if len(fits) > 1:
        ds = dataclasses.replace(
            ds, x_val=np.concatenate([f.x_val for f in setup.folds]), y_val=np.concatenate(y_val)
        )
    p_test = model.predict(ds.x_test, verbose=0, batch_size=4096)
    return model, evaluate(ds, p_val, p_test, conf.evaluation, conf.data.min_val_minority)


def final_model(fits: Sequence[FoldFit]):
    """The mean of the fold models' outputs (class probabilities) when there are folds."""
    if len(fits) == 1:
        return fits[0].model
    import keras

    inputs = keras.Input(shape=fits[0].model.input_shape[1:], name="features")
    outputs = keras.layers.Average(name="fold_mean")([f.model(inputs) for f in fits])
    return keras.Model(inputs, outputs, name="fold_ensemble")


def train(
    cfg: DictConfig | TrainConfig,
    job: JobInfo | None = None,
    extra_callbacks: Sequence[Any] = (),
    on_run_start: Callable[[Any], None] | None = None,
) -> Result:
    """Train and evaluate one configuration; record it in MLflow when tracking is on."""
    started = time.perf_counter()
    conf, raw = _configs(cfg)
    offline_because = check_store(conf) if conf.tracking.enabled else None
    backend.start()
    job = job or JobInfo()
    out = Path(conf.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    _limit_threads(conf.trainer.threads)
    check_arguments(conf)
    setup = prepare(conf)
    tracked = _start_run(conf, job, setup.ds, offline_because) if conf.tracking.enabled else None
    with tracked or nullcontext():
        if tracked is not None:
            _log_start(tracked, conf, raw, job)
            if on_run_start is not None:
                on_run_start(tracked)
        log.info(
            "data %s: %s; first batch after %.1fs",
            setup.ds.name,
            _data_counts(setup),
            time.perf_counter() - started,
        )
        fits = [fit_fold(setup, k, tracked, extra_callbacks) for k in range(len(setup.folds))]
        result = outcome(setup, fits)
        result.model.save(out / "model.keras")
        if tracked is not None:
            _log_end(tracked, setup, fits, result)
        report(setup, result, test="optuna.trial_number" not in job.tags)
        if tracked is not None:
            _print_ui_hint(conf, tracked)
            result = dataclasses.replace(result, run_id=tracked.run_id, model_uri=tracked.model_uri)
    return result


def _data_counts(setup: Setup) -> dict[str, Any]:
    """Class counts per split as the models see them: per fold when there are folds."""
    counts = setup.ds.class_counts()
    if len(setup.folds) == 1:
        return counts
    folds = {
        f"fold {k}": {s: f.class_counts()[s] for s in ("train", "val")}
        for k, f in enumerate(setup.folds)
    }
    return {**folds, "test": counts["test"]}


def outcome(setup: Setup, fits: list[FoldFit]) -> Result:
    """What the fitted folds amount to: evaluation, mean history, objective, final model."""
    model, ev = evaluate_fits(setup, fits)
    values = tuple(objective_value(name, ev.metrics, fits) for name in setup.conf.objectives)
    value = values[0] if len(values) == 1 else values
    return Result(value, None, ev.metrics, mean_history(fits), ev, model, setup.ds)


SHOWN = (
    "test_recall",
    "test_majority_recall",
    "test_precision",
    "test_recall_at_fpr",
    "test_pr_auc",
    "test_roc_auc",
    "test_macro_f1",
    "test_accuracy",
)


VALIDATION_SHOWN = ("val_at_threshold_recall", "val_at_threshold_majority_recall")


def report(setup: Setup, result: Result, test: bool = True) -> None:
    """The terminal summary: test confusion matrix, the scores that judge the minority class.
    A sweep's trial (``test=False``) shows its validation figures only: the sweep prints the
    test figures of the trial it chooses, once, at its end."""
    from losslab.evaluate import format_confusion

    ev, value = result.evaluation, result.objective
    at = "argmax" if ev.threshold is None else f"{ev.threshold:.3f}"
    if not test:
        shown = [f"{k[17:]} {ev.metrics[k]:.4f}" for k in VALIDATION_SHOWN if k in ev.metrics]
        print(f"\nvalidation at threshold {at}: " + " | ".join(shown))
        for name, number in zip(setup.conf.objectives, _as_tuple(value), strict=True):
            print(f"objective {name} = {number:.4f}")
        return
    print(f"\nTest confusion matrix ({setup.ds.name}, threshold {at}):")
    print(format_confusion(ev))
    shown = [f"{k[5:]} {ev.metrics[k]:.4f}" for k in SHOWN if k in ev.metrics]
    print("test: " + " | ".join(shown))
    for name, number in zip(setup.conf.objectives, _as_tuple(value), strict=True):
        print(f"objective {name} = {number:.4f}")
    print(f"Output: {setup.conf.paths.output_dir} (model.keras, and the job's log)")


def _start_run(conf: TrainConfig, job: JobInfo, ds, offline_because: str | None):
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
        "losslab.run_type": "job" if parent else "single",
        "losslab.job_name": job.name,
        "losslab.overrides": " ".join(job.overrides),
        "losslab.data": ds.name,
        "losslab.task": ds.task,
        "losslab.data_fingerprint": ds.fingerprint(),
        "mlflow.source.name": "train.py",
        **scheduler_tags(),
        **job.tags,
        **conf.tags,
    }
    if job.num is not None:
        tags["losslab.job_num"] = str(job.num)
    commit = git_commit(Path(__file__).parent)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    start = RunStart(
        run_name=_run_name(conf, job, parent if offline_because is None else None),
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


def _run_name(conf: TrainConfig, job: JobInfo, parent: str | None) -> str:
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
            shared = json.loads(tags.get(names.SHARED_TAG, "[]"))
        except Exception as err:  # the name is a convenience; the run matters more
            log.debug("shared overrides of sweep %s not read: %s", parent, err)
    return names.job_name(job.num, job.overrides, shared)


def _log_start(tracked, conf: TrainConfig, raw: DictConfig, job: JobInfo) -> None:
    import yaml

    plain = OmegaConf.to_container(raw, resolve=True, enum_to_str=True)
    plain.pop("hydra", None)
    tracked.log_params(plain)
    tracked.log_yaml(plain, "config/config.yaml")
    tracked.log_yaml(list(job.overrides), "config/overrides.yaml")
    if job.hydra_dir and Path(job.hydra_dir).is_dir():
        for path in sorted(Path(job.hydra_dir).glob("*.yaml")):
            tracked.log_yaml(yaml.safe_load(path.read_text()), f"config/hydra/{path.name}")


def _log_end(tracked, setup: Setup, fits: list[FoldFit], result: Result) -> None:
    """Everything known once training is over: scores, epochs, plots, the model."""
    ev, history, model = result.evaluation, result.history, result.model
    tracked.sync()  # a store away for too long: the rest goes to the spill folder
    epochs_run = [len(f.history["loss"]) for f in fits]
    best = [f.best_epoch for f in fits]
    values = _as_tuple(result.objective)
    tracked.log_metrics(
        {
            **ev.metrics,
            "objective": values[0],
            **{f"objective_{i}": v for i, v in enumerate(values[1:], start=1)},
            "best_epoch": float(np.mean(best)),
            "epochs_run": float(np.mean(epochs_run)),
        }
    )
    if len(fits) > 1:
        for k, (run, b) in enumerate(zip(epochs_run, best, strict=True)):
            tracked.log_metrics({f"fold_{k}/epochs_run": run, f"fold_{k}/best_epoch": b})
        for epoch in range(len(history["loss"])):  # not the objective: named for what it is
            mean = {f"fold_mean/{key}": values[epoch] for key, values in history.items()}
            tracked.log_metrics(mean, epoch)
    tracked.set_tags({"losslab.objective": ",".join(setup.conf.objectives)})
    _log_evaluation(tracked, setup, ev, history, model)
    if setup.conf.tracking.log_model:
        tracked.log_model(model, setup.ds.x_train[:5])


def _log_evaluation(tracked, setup: Setup, ev, history, model) -> None:
    import json

    from losslab import models, plots
    from losslab.evaluate import curve_points

    tracked.log_text(models.summary_text(model), "model_summary.txt")
    confusion = {
        "labels": ev.class_names,
        "at_threshold": ev.confusion.tolist(),
        "threshold": ev.threshold,
    }
    if ev.confusion_at_half is not None:
        confusion["at_0.5"] = ev.confusion_at_half.tolist()
    tracked.log_text(json.dumps(confusion, indent=2), "evaluation/confusion_matrix.json")
    tracked.log_text(json.dumps(curve_points(ev)), "evaluation/curves.json")
    plot_dir = Path(setup.conf.paths.output_dir) / "plots"
    plot_dir.mkdir(exist_ok=True)
    plots.confusion_matrix(ev, plot_dir / "confusion_matrix.png")
    plots.roc_curve(ev, plot_dir / "roc_curve.png")
    plots.pr_curve(ev, plot_dir / "pr_curve.png")
    plots.learning_curves(history, plot_dir / "learning_curves.png")
    tracked.log_artifacts(plot_dir, "plots")


def _print_ui_hint(conf: TrainConfig, tracked) -> None:
    from losslab.tracking.redact import redact_text
    from losslab.tracking.run import ui_url

    if tracked.offline:  # its closing line says where it is kept instead
        return
    url = ui_url(conf.tracking.uri, tracked.experiment_id, tracked.run_id)
    if url:
        print(f"MLflow run: {redact_text(url)}")
    elif conf.tracking.ui_hint:
        print(f"MLflow run {tracked.run_id}; see it with:\n  {redact_text(conf.tracking.ui_hint)}")


def main(cfg: DictConfig) -> Any:
    """Entry point for ``@hydra.main``: the objective value for sweepers.

    A job launched by the Optuna sweeper reports its objective every epoch and may be pruned:
    it then raises ``optuna.TrialPruned``, as an Optuna objective function does. With several
    objectives it returns one value each.
    """
    from losslab.cli import single_run_errors
    from losslab.search import trial as search_trial

    job = job_info()
    trial = search_trial.current(job.pruner)
    if trial is None:
        with single_run_errors(job.sweep_dir is None):
            return train(cfg, job).objective
    import optuna

    conf = config_lib.to_objects(cfg)
    backend.start()  # the pruning callback imports Keras
    job.tags.update(trial.tags())
    maximize = conf.directions[0] == "maximize"
    callbacks = trial.callbacks(conf.objectives[0], maximize, conf.trainer.early_stopping)
    try:
        with trial:
            result = train(conf, job, callbacks, on_run_start=trial.link_run)
            trial.record(result.metrics)
            return result.objective
    except optuna.TrialPruned as pruned:  # the sweeper ends the trial PRUNED
        log.info("trial %d pruned: %s", trial.ref.number, pruned)
        raise
