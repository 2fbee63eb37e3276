"""The one place that wires data, imbalance remedy, model, loss, training, evaluation and
MLflow together. Everything is checked before the first batch: config values, the loss's
arguments, the data, and that loss, remedy and task fit each other.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from losslab import config as config_lib
from losslab.config import TrainConfig

log = logging.getLogger(__name__)

HISTORY_EXTRAS = ("loss",)
EVALUATION_PREFIXES = ("test_", "val_final_", "val_at_threshold_")


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
    objective: float
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
    if setting == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(setting)


def _limit_threads(threads: int) -> None:
    """TensorFlow fixes its thread pools at first use: a later job in the process keeps them."""
    if not threads:
        return
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


def _check_objective(objective: str, history_keys: Sequence[str]) -> None:
    if objective in history_keys or objective == "threshold":
        return
    if objective.startswith(EVALUATION_PREFIXES):
        return
    raise config_lib.ConfigError(
        f"objective={objective!r} is not recorded; choose one of {sorted(history_keys)} "
        f"or an evaluation metric starting with {list(EVALUATION_PREFIXES)}"
    )


def _check_early_stopping(es: config_lib.EarlyStoppingConfig, epoch_keys: Sequence[str]) -> None:
    if es.enabled and es.monitor not in epoch_keys:
        raise config_lib.ConfigError(
            f"trainer.early_stopping.monitor={es.monitor!r} is not recorded every epoch; choose "
            f"one of {sorted(epoch_keys)} or set trainer.early_stopping.enabled=false"
        )


def _best_epoch(history: dict[str, list[float]], cfg: TrainConfig) -> int:
    es = cfg.trainer.early_stopping
    values = history.get(es.monitor)
    if not es.enabled or not es.restore_best_weights or not values:
        return len(next(iter(history.values()))) - 1
    return int(np.nanargmax(values) if es.maximizes else np.nanargmin(values))


def objective_value(name: str, metrics: dict[str, float], history, best_epoch: int) -> float:
    if name in metrics:
        return float(metrics[name])
    if name in history:
        return float(history[name][best_epoch])
    raise KeyError(f"objective={name!r} not found; recorded: {sorted([*metrics, *history])}")


def train(
    cfg: DictConfig | TrainConfig,
    job: JobInfo | None = None,
    extra_callbacks: Sequence[Any] = (),
    on_run_start: Callable[[Any], None] | None = None,
) -> Result:
    """Train and evaluate one configuration; record it in MLflow when tracking is on."""
    started = time.perf_counter()
    raw = cfg if isinstance(cfg, DictConfig) else OmegaConf.structured(cfg)
    conf = config_lib.to_objects(raw) if isinstance(cfg, DictConfig) else cfg
    job = job or JobInfo()
    root = Path(conf.paths.root_dir)
    out = Path(conf.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    _limit_threads(conf.trainer.threads)
    import keras

    from losslab import data, imbalance, losses, metrics, models

    loss = losses.get(conf.loss)
    keras.utils.set_random_seed(conf.seed)
    ds = data.load(conf.data, conf.seed, root)
    losses.check_task(conf.loss, ds.task)
    loss = losses.get(conf.loss, ds.y_train)
    prepared = imbalance.prepare(conf.imbalance, ds.y_train, ds.task)
    one_hot = losses.wants_one_hot(conf.loss, ds.task)
    train_metrics = metrics.for_task(ds.task, ds.n_outputs, one_hot)
    history_keys = ["loss", *[m.name for m in train_metrics]]
    epoch_keys = [*history_keys, *[f"val_{k}" for k in history_keys]]
    _check_objective(conf.objective, epoch_keys)
    _check_early_stopping(conf.trainer.early_stopping, epoch_keys)

    def labels(y: np.ndarray) -> np.ndarray:
        return keras.utils.to_categorical(y, ds.n_outputs) if one_hot else y

    tracked = _start_run(conf, job, ds) if conf.tracking.enabled else None
    with tracked or nullcontext():
        if tracked is not None:
            _log_start(tracked, conf, raw, job)
            if on_run_start is not None:
                on_run_start(tracked)
        model = models.build(
            conf.model, ds.input_shape, ds.n_outputs, ds.task, prepared.output_bias
        )
        model.compile(optimizer=_optimizer(conf.optimizer), loss=loss, metrics=train_metrics)
        callbacks = [keras.callbacks.TerminateOnNaN(), *extra_callbacks]
        es = conf.trainer.early_stopping
        if es.enabled:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor=es.monitor,
                    mode=es.mode,
                    patience=es.patience,
                    min_delta=es.min_delta,
                    restore_best_weights=es.restore_best_weights,
                )
            )
        if tracked is not None:
            from losslab.tracking.callback import MlflowMetricsLogger

            callbacks.insert(
                0,
                MlflowMetricsLogger(
                    tracked.writer,
                    conf.tracking.every_n_batches,
                    conf.tracking.batch_prefix,
                    samples_per_epoch=len(ds.x_train),
                    flush_timeout_s=conf.tracking.offline_after_s,
                ),
            )
        fit_args: dict[str, Any] = {"class_weight": prepared.class_weight}
        if prepared.oversample_fraction is not None:
            stream, steps = imbalance.oversampled(
                ds.x_train,
                ds.y_train,
                prepared.oversample_fraction,
                conf.trainer.batch_size,
                conf.seed,
            )
            fit_args.update(x=stream, steps_per_epoch=steps, shuffle=False)
        else:
            fit_args.update(
                x=ds.x_train,
                y=labels(ds.y_train),
                batch_size=conf.trainer.batch_size,
                shuffle=conf.trainer.shuffle,
            )
        log.info(
            "data %s: %s; first batch after %.1fs",
            ds.name,
            ds.class_counts(),
            time.perf_counter() - started,
        )
        fit = model.fit(
            **fit_args,
            epochs=conf.trainer.epochs,
            validation_data=(ds.x_val, labels(ds.y_val)),
            callbacks=callbacks,
            verbose=_verbose(str(conf.trainer.verbose)),
        )
        history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
        if any(not math.isfinite(v) for v in history.get("loss", [])):
            raise FloatingPointError(
                f"training loss became {history['loss'][-1]} at epoch {len(history['loss'])}"
            )
        from losslab.evaluate import evaluate, format_confusion

        p_val = model.predict(ds.x_val, verbose=0, batch_size=4096)
        p_test = model.predict(ds.x_test, verbose=0, batch_size=4096)
        ev = evaluate(ds, p_val, p_test, conf.evaluation)
        best = _best_epoch(history, conf)
        value = objective_value(conf.objective, ev.metrics, history, best)
        model.save(out / "model.keras")
        if tracked is not None:
            _log_end(tracked, conf, ev, history, model, ds, out, value, best)
        print(
            f"\nTest confusion matrix ({ds.name}, threshold "
            f"{'argmax' if ev.threshold is None else f'{ev.threshold:.3f}'}):"
        )
        print(format_confusion(ev))
        shown = {
            k: round(v, 4)
            for k, v in ev.metrics.items()
            if k
            in (
                "test_precision",
                "test_recall",
                "test_f1",
                "test_roc_auc",
                "test_pr_auc",
                "test_macro_f1",
                "test_accuracy",
            )
        }
        print(f"{shown}\nobjective {conf.objective} = {value:.4f}")
        if tracked is not None:
            _print_ui_hint(conf, tracked)
    run_id, model_uri = (tracked.run_id, tracked.model_uri) if tracked else (None, None)
    return Result(value, run_id, ev.metrics, history, ev, model, ds, model_uri)


def _start_run(conf: TrainConfig, job: JobInfo, ds):
    import os

    from losslab.tracking.run import MLFLOW_RUN_ID_ENV, TrackedRun, git_commit
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
        **job.tags,
        **conf.tags,
    }
    if job.num is not None:
        tags["losslab.job_num"] = str(job.num)
    commit = git_commit(Path(__file__).parent)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    name = " ".join(job.overrides) or None
    return TrackedRun(
        conf.tracking.uri,
        conf.tracking.experiment or conf.task_name,
        run_name=name[:250] if name else None,
        parent_run_id=parent,
        tags=tags,
        artifact_location=conf.tracking.artifact_location,
        run_id=given,
        spill_dir=Path(conf.paths.output_dir) / SPILL_DIR,
        offline_after_s=conf.tracking.offline_after_s,
        heartbeat_s=conf.tracking.heartbeat_s,
        stale_after_s=conf.tracking.stale_after_s,
    )


def _log_start(tracked, conf: TrainConfig, raw: DictConfig, job: JobInfo) -> None:
    import yaml

    plain = OmegaConf.to_container(raw, resolve=True)
    plain.pop("hydra", None)
    tracked.log_params(plain)
    tracked.log_yaml(plain, "config/config.yaml")
    tracked.log_yaml(list(job.overrides), "config/overrides.yaml")
    if job.hydra_dir and Path(job.hydra_dir).is_dir():
        for path in sorted(Path(job.hydra_dir).glob("*.yaml")):
            tracked.log_yaml(yaml.safe_load(path.read_text()), f"config/hydra/{path.name}")


def _log_end(tracked, conf, ev, history, model, ds, out: Path, value: float, best: int) -> None:
    import json

    from losslab import models, plots
    from losslab.evaluate import curve_points

    tracked.sync()  # a store away for too long: the rest goes to the spill folder
    tracked.log_metrics({**ev.metrics, "objective": value, "best_epoch": best})
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
    plot_dir = out / "plots"
    plot_dir.mkdir(exist_ok=True)
    plots.confusion_matrix(ev, plot_dir / "confusion_matrix.png")
    plots.roc_curve(ev, plot_dir / "roc_curve.png")
    plots.pr_curve(ev, plot_dir / "pr_curve.png")
    plots.learning_curves(history, plot_dir / "learning_curves.png")
    tracked.log_artifacts(plot_dir, "plots")
    tracked.set_tags({"losslab.objective": conf.objective})
    if conf.tracking.log_model:
        tracked.log_model(model, ds.x_train[:5])


def _print_ui_hint(conf: TrainConfig, tracked) -> None:
    from losslab.tracking.run import ui_url

    url = ui_url(conf.tracking.uri, tracked.experiment_id, tracked.run_id)
    if url:
        print(f"MLflow run: {url}")
    elif conf.tracking.ui_hint:
        print(f"MLflow run {tracked.run_id}; see it with: {conf.tracking.ui_hint}")


def main(cfg: DictConfig) -> Any:
    """Entry point for ``@hydra.main``: the objective value for sweepers.

    A job launched by the Optuna sweeper reports its objective every epoch and may be pruned.
    """
    from losslab.search import trial as search_trial

    job = job_info()
    trial = search_trial.current(job.pruner)
    if trial is None:
        return train(cfg, job).objective
    import optuna

    job.tags.update(trial.tags())
    early_stopping = config_lib.EarlyStoppingConfig(**cfg.trainer.early_stopping)
    callbacks = trial.callbacks(str(cfg.objective), early_stopping)
    try:
        with trial:
            return train(cfg, job, callbacks, on_run_start=trial.link_run).objective
    except optuna.TrialPruned as pruned:
        log.info("trial %d pruned: %s", trial.ref.number, pruned)
        return search_trial.Pruned(str(pruned))
