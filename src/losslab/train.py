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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from losslab import backend, objectives, recording
from losslab import config as config_lib
from losslab.config import TrainConfig
from losslab.recording import JobInfo
from losslab.tracking import tag_keys

log = logging.getLogger(__name__)


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

    @property
    def degenerate(self) -> str | None:
        """Why the model is no model (constant validation predictions), else None."""
        from losslab.evaluate import degenerate

        return degenerate(self.metrics)


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
    if cfg.name == "adamw":  # conf/optimizer/adamw.yaml sets Keras' 0.004; an explicit 0 holds
        decay = {} if cfg.weight_decay is None else {"weight_decay": cfg.weight_decay}
        return keras.optimizers.AdamW(**decay, **common)
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


def prepare(conf: TrainConfig, loaded: Callable[[], Any] | None = None) -> Setup:
    """Load the data (or take it from ``loaded``: :func:`losslab.data.load_beside`) and check
    that data, loss, remedy, objective and validation fit together, before any run is
    recorded or batch trained."""
    from losslab import data, imbalance, losses

    ds = loaded() if loaded is not None else data.load(conf.data, conf.seed, conf.paths.root_dir)
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


def check_store(conf: TrainConfig, in_sweep: bool = False) -> str | None:
    """The tracking store, asked before the data is loaded: None when it answers; why not
    when ``tracking.if_unreachable=offline`` lets the run start spilling; else an error that
    names the URI and the fix."""
    from losslab.tracking.reachable import check_usable

    tracking = conf.tracking
    wait_s = (tracking.offline_after_s or 0.0) if in_sweep else 0.0
    where = (tracking.uri, tracking.artifact_location, str(tracking.if_unreachable))
    return check_usable(*where, wait_s=wait_s)


def _epoch_keys(ds, one_hot: bool) -> list[str]:
    from losslab import metrics

    names = ["loss", *[m.name for m in metrics.for_task(ds.task, ds.n_outputs, one_hot)]]
    keys = [*names, *[f"val_{k}" for k in names]]
    return [*keys, "val_recall_at_fpr"] if ds.task == "binary" else keys


def _check(setup: Setup) -> None:
    from losslab.evaluate import check_certifiable, check_judgeable

    conf = setup.conf
    _check_images(conf, setup.ds)
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
    check_certifiable([fold.y_val for fold in setup.folds], conf.evaluation)


def _check_images(conf: TrainConfig, ds) -> None:
    """A CNN or image augmentation on data that turned out to be flat features (arrays or a
    loader of one's own say so only once loaded)."""
    used = conf.image_settings()
    if used and ds.image_shape is None:
        raise config_lib.ConfigError(
            f"{used[0]} needs image data; data.source={conf.data.source} gave flat "
            f"features of shape {ds.input_shape}: give images as (n, h, w[, c]) arrays"
        )


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
    """Ours first (validation, then the logger), so every later callback (pruning, early
    stopping) sees what is logged."""
    import keras

    from losslab.metrics import Validation

    conf = setup.conf
    binary = setup.ds.task == "binary"
    callbacks: list[Any] = [
        Validation(
            fold.x_val,
            _fit_labels(setup, fold.y_val),
            fold.y_val if binary else None,
            conf.evaluation.max_fpr if binary else None,
        )
    ]
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


def _fit_labels(setup: Setup, y: np.ndarray) -> np.ndarray:
    """Labels as the loss takes them: one-hot classes where it wants them."""
    import keras

    return keras.utils.to_categorical(y, setup.ds.n_outputs) if setup.one_hot else y


def _fit_arguments(setup: Setup, fold, k: int) -> dict[str, Any]:
    """``fit``'s arguments; validation is a callback's (:class:`losslab.metrics.Validation`)."""
    from losslab import imbalance

    conf, ds = setup.conf, setup.ds
    args: dict[str, Any] = {
        "class_weight": setup.prepared.class_weight,
        "epochs": conf.trainer.epochs,
        "verbose": _verbose(str(conf.trainer.verbose)),
    }
    if setup.prepared.oversample_fraction is None:
        return {
            **args,
            "x": fold.x_train,
            "y": _fit_labels(setup, fold.y_train),
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
    from losslab.predict import scores

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
    # Keras on TensorFlow without a distribution strategy leaves the optimizer to be built
    # inside the first trace, and a tf.function that creates variables is traced twice: with
    # the compiled metrics that second trace was a third of a small job's fit.
    model.optimizer.build(model.trainable_variables)
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
        scores(model, fold.x_val),
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
# a threshold rule that delivers another operating point than the exact rate's: its own
DELIVERED_BY_RULE = {"fpr_bound": {"val_recall_at_fpr": "val_at_threshold_recall"}}


def objective_value(
    name: str, metrics: dict[str, float], fits: Sequence[FoldFit], rule: str = "recall_at_fpr"
) -> float:
    """An evaluation metric; a ranking or operating-point figure of the delivered rule on its
    out-of-fold validation scores (:data:`DELIVERED`; under ``evaluation.threshold=fpr_bound``
    the minority recall at its bounded threshold); else the mean over folds of an epoch
    metric at each best epoch (a loss, which the delivered scores do not have)."""
    delivered = {**DELIVERED, **DELIVERED_BY_RULE.get(str(rule), {})}
    if delivered.get(name) in metrics:
        name = delivered[name]
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
    from losslab.predict import scores

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
    p_test = scores(model, ds.x_test)
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
    from losslab import data

    started = time.perf_counter()
    conf, raw = _configs(cfg)
    job = job or JobInfo()
    in_sweep = job.sweep_dir is not None  # the sweep's preflight found the store answering
    offline_because = check_store(conf, in_sweep) if conf.tracking.enabled else None
    loaded = data.load_beside(conf.data, conf.seed, conf.paths.root_dir)  # while Keras starts
    backend.start()
    out = Path(conf.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    _limit_threads(conf.trainer.threads)
    check_arguments(conf)
    setup = prepare(conf, loaded)
    tracked = None
    if conf.tracking.enabled:
        tracked = recording.start_run(conf, job, setup.ds, offline_because)
    with tracked or nullcontext():
        if tracked is not None:
            recording.record_start(tracked, raw, job)
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
        save_model(result.model, out / "model.keras")
        if result.degenerate is not None:
            log.warning(
                "%s: the model answers every input alike; marked degenerate", result.degenerate
            )
        if tracked is not None:
            recording.record_end(tracked, conf, _run_end(setup, fits, result))
        report(setup, result, test=tag_keys.TRIAL_NUMBER not in job.tags)
        if tracked is not None:
            recording.print_ui_hint(conf, tracked)
            result = dataclasses.replace(result, run_id=tracked.run_id, model_uri=tracked.model_uri)
    return result


def save_model(model: Any, path: Path) -> None:
    """The job's own copy of its model; on a full disk, no partial file and one line."""
    from losslab.tracking import disk

    try:
        model.save(path)
    except OSError as err:
        path.unlink(missing_ok=True)
        if not disk.is_full(err):
            raise
        raise disk.DiskFull(path) from err


def _run_end(setup: Setup, fits: Sequence[FoldFit], result: Result) -> recording.RunEnd:
    return recording.RunEnd(
        degenerate=result.degenerate,
        evaluation=result.evaluation,
        history=result.history,
        model=result.model,
        objective=_as_tuple(result.objective),
        epochs_run=[len(f.history["loss"]) for f in fits],
        best_epochs=[f.best_epoch for f in fits],
        example=setup.ds.x_train[:5],
        raw=setup.ds.raw,  # a source that encodes raw rows: the logged model takes them
    )


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
    from losslab.evaluate import SPREAD, prediction_spread

    model, ev = evaluate_fits(setup, fits)
    ev.metrics[SPREAD] = max(prediction_spread(f.p_val) for f in fits)
    if ev.task == "binary" and len(np.unique(ev.y_test)) == 2:
        from losslab.uncertainty import interval_metrics

        max_fpr = setup.conf.evaluation.max_fpr
        ev.metrics.update(interval_metrics(ev.y_test, ev.p_test, ev.threshold, max_fpr))
    rule = setup.conf.evaluation.threshold
    values = tuple(objective_value(n, ev.metrics, fits, rule) for n in setup.conf.objectives)
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


def _with_interval(name: str, key: str, metrics: dict[str, float]) -> str:
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    if low is None or high is None:
        return f"{name} {metrics[key]:.4f}"
    return f"{name} {metrics[key]:.4f} [{low:.2f}, {high:.2f}]"


def _wrapped(items: list[str], first: str, width: int = 120) -> list[str]:
    """The items joined by `` | `` after ``first``, a new indented line before ``width``."""
    lines = [""]
    for item in items:
        if lines[-1] and len(first) + len(lines[-1]) + 3 + len(item) > width:
            lines.append(item)
        else:
            lines[-1] = f"{lines[-1]} | {item}" if lines[-1] else item
    return [first + lines[0]] + [" " * len(first) + line for line in lines[1:]]


def _binary_lines(metrics: dict[str, float], confidence: float) -> list[str]:
    """The test split's class counts, the prevalence-dependent scores at the training
    split's prevalence, and the bound on the threshold's validation false-positive rate."""
    if "test_minority_count" not in metrics:
        return []
    from losslab.prevalence import SUFFIX

    minority, majority = int(metrics["test_minority_count"]), int(metrics["test_majority_count"])
    share = metrics["train_minority_share"]
    weighted = [k for k in metrics if k.startswith("test_") and k.endswith(SUFFIX)]
    shown = " | ".join(f"{k[5 : -len(SUFFIX)]} {metrics[k]:.4f}" for k in weighted)
    fp, tn = int(metrics["val_at_threshold_fp"]), int(metrics["val_at_threshold_tn"])
    at_share = [f"test weighted to the training split's {share:.2%} minority: {shown}"]
    return [
        f"test holds {minority} minority and {majority} majority samples "
        f"({minority / max(minority + majority, 1):.1%})",
        *(at_share if shown else []),
        f"validation at the threshold: {fp} false positive{'' if fp == 1 else 's'} of "
        f"{fp + tn} majority samples, "
        f"false-positive rate <= {metrics['val_at_threshold_fpr_bound']:.4f} "
        f"at {confidence:.0%} confidence",
    ]


def report(setup: Setup, result: Result, test: bool = True) -> None:
    """The terminal summary: test confusion matrix, the scores that judge the minority class.
    A sweep's trial (``test=False``) shows its validation figures only: the sweep prints the
    test figures of the trial it chooses, once, at its end."""
    from losslab.evaluate import format_confusion

    ev, value = result.evaluation, result.objective
    at = "argmax" if ev.threshold is None else f"{ev.threshold:.4g}"
    if not test:
        shown = [f"{k[17:]} {ev.metrics[k]:.4f}" for k in VALIDATION_SHOWN if k in ev.metrics]
        print(f"\nvalidation at threshold {at}: " + " | ".join(shown))
        for name, number in zip(setup.conf.objectives, _as_tuple(value), strict=True):
            print(f"objective {name} = {number:.4f}")
        return
    print(f"\nTest confusion matrix ({setup.ds.name}, threshold {at}):")
    print(format_confusion(ev))
    shown = [_with_interval(k[5:], k, ev.metrics) for k in SHOWN if k in ev.metrics]
    print("\n".join(_wrapped(shown, "test: ")))
    if f"{SHOWN[0]}_ci_low" in ev.metrics:
        print("      [in brackets: 95% interval, stratified bootstrap over the test set]")
    for line in _binary_lines(ev.metrics, setup.conf.evaluation.confidence):
        print(line)
    for name, number in zip(setup.conf.objectives, _as_tuple(value), strict=True):
        print(f"objective {name} = {number:.4f}")
    print(f"Output: {setup.conf.paths.output_dir} (model.keras, and the job's log)")
