"""Typed schemas for every config group.

Hydra merges each YAML option onto one of these dataclasses, so a misspelt key or a value of
the wrong type fails at composition with the key's full name. Range and choice checks live in
``__post_init__`` and run when :func:`to_objects` turns the composed config into dataclasses,
which ``losslab.train`` does before any data is loaded. This module imports neither
TensorFlow nor Keras, so ``python train.py --help`` and ``--cfg job`` stay fast.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING


class ConfigError(ValueError):
    """A config value outside what is allowed; the message names the key and the choices."""


def _choice(key: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed; choose one of {allowed}")


def _positive(key: str, value: float | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{key}={value!r} is not allowed; it must be a finite number > 0")


def _fraction(key: str, value: float, *, low_open: bool = True, high_open: bool = True) -> None:
    ok_low = value > 0 if low_open else value >= 0
    ok_high = value < 1 if high_open else value <= 1
    if not (ok_low and ok_high):
        lo = "(0" if low_open else "[0"
        hi = "1)" if high_open else "1]"
        raise ConfigError(f"{key}={value!r} is not allowed; it must lie in {lo}, {hi}")


# ----------------------------------------------------------------------------- data
DATA_SOURCES = (
    "digits_pair",
    "image_pair",
    "image_classes",
    "creditcard",
    "synthetic_fraud",
    "imdb",
    "multilabel",
)
IMAGE_DATASETS = ("mnist", "fashion_mnist")
FALLBACK_SOURCES = ("synthetic_fraud", "digits_pair", "multilabel")  # need no file


@dataclass
class DataConfig:
    """One schema for every source; each source reads the fields it needs.

    ``source`` picks the loader. Splits are stratified and seeded by ``seed`` (the run's seed
    when null).
    """

    source: str = MISSING
    seed: int | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    # how the validation split is taken: "stratified" (default) or "tail", the last
    # val_fraction of the unshuffled training arrays as Keras' validation_split does
    val_split: str = "stratified"
    # every class keeps at least this many samples in validation, and training as many (for
    # multi-label data: positive labels of all outputs together); else refused. 0: no floor
    min_val_minority: int = 10
    # k > 1: k stratified folds of train + validation, one model each; the objective is the
    # mean over folds, the threshold is chosen on the out-of-fold predictions, and the test
    # predictions are the mean of the k models
    folds: int = 1
    # image pairs and digits: which label is the majority (0) and the minority (1) class
    dataset: str = "mnist"
    majority: int = 9
    minority: int = 4
    n_minority: int | None = 100
    max_majority: int | None = None
    test_per_class: int | None = None
    # files on disk: IDX folder for images, CSV for credit cards, npz for IMDB
    source_dir: str | None = None
    path: str | None = None
    max_rows: int | None = None
    max_train: int | None = None
    clip: float = 5.0
    # generated data
    n_samples: int = 20000
    n_features: int = 30
    positive_fraction: float = 0.0017
    class_sep: float = 1.0
    n_labels: int = 12
    labels_per_sample: int = 1
    num_words: int = 10000
    # the source used instead when a file-based source is given no file (e.g. synthetic_fraud
    # for creditcard without data.path); null: a missing file is an error
    fallback: str | None = None

    def __post_init__(self) -> None:
        _choice("data.source", self.source, DATA_SOURCES)
        _fraction("data.val_fraction", self.val_fraction)
        _fraction("data.test_fraction", self.test_fraction)
        self._check_validation()
        self._check_pair()
        for key in ("n_minority", "max_majority", "max_rows", "max_train", "test_per_class"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"data.{key}={value!r} is not allowed; it must be > 0 or null")
        if self.fallback is not None:
            _choice("data.fallback", self.fallback, FALLBACK_SOURCES)
        if self.source == "creditcard" and not self.path and self.fallback is None:
            raise ConfigError("data.path is missing; give the credit-card CSV (plain or .gz)")
        _fraction("data.positive_fraction", self.positive_fraction)
        for key in ("n_samples", "n_features", "n_labels", "num_words"):
            _positive(f"data.{key}", getattr(self, key))
        _positive("data.clip", self.clip)

    def _check_validation(self) -> None:
        _choice("data.val_split", self.val_split, ("stratified", "tail"))
        if self.min_val_minority < 0:
            raise ConfigError(
                f"data.min_val_minority={self.min_val_minority!r} is not allowed; it must be >= 0"
            )
        if self.folds < 1:
            raise ConfigError(f"data.folds={self.folds!r} is not allowed; it must be >= 1")
        if self.folds > 1 and self.val_split == "tail":
            raise ConfigError(
                f"data.folds={self.folds} needs data.val_split=stratified; the tail split has "
                "one validation part only"
            )

    def _check_pair(self) -> None:
        """Image sources name a data set; pairs name two different digits or classes."""
        if self.source in ("image_pair", "image_classes"):
            _choice("data.dataset", self.dataset, IMAGE_DATASETS)
        if self.source not in ("image_pair", "digits_pair"):
            return
        if self.majority == self.minority:
            raise ConfigError(
                f"data.majority={self.majority} equals data.minority; they must differ"
            )
        for key in ("majority", "minority"):
            _choice(f"data.{key}", getattr(self, key), range(10))


# ----------------------------------------------------------------------------- model
MODEL_KINDS = ("mlp", "cnn")
IMAGE_SOURCES = ("digits_pair", "image_pair", "image_classes")


@dataclass
class ModelConfig:
    """An MLP: hidden ``units``, each followed by ``dropout``, with L2 on every kernel.

    ``kind: cnn`` puts convolution blocks (``filters``, each a 3x3 convolution and 2x2
    max-pooling) in front of the dense layers; it needs image data.
    """

    kind: str = "mlp"
    units: list[int] = field(default_factory=lambda: [64, 32])
    activation: str = "relu"
    dropout: float = 0.0
    l2: float = 0.0
    filters: list[int] = field(default_factory=lambda: [32, 64])

    def __post_init__(self) -> None:
        _choice("model.kind", self.kind, MODEL_KINDS)
        if not self.units or any(u <= 0 for u in self.units):
            raise ConfigError(f"model.units={list(self.units)!r}: give one or more sizes > 0")
        if self.kind == "cnn" and (not self.filters or any(f <= 0 for f in self.filters)):
            raise ConfigError(f"model.filters={list(self.filters)!r}: give one or more sizes > 0")
        _fraction("model.dropout", self.dropout, low_open=False)
        if self.l2 < 0:
            raise ConfigError(f"model.l2={self.l2!r} is not allowed; it must be >= 0")


# ----------------------------------------------------------------------------- loss
LOSS_PRESETS = (
    "bce",
    "weighted_bce",
    "focal",
    "categorical_ce",
    "sparse_categorical_ce",
    "categorical_focal",
    "keras",
    "custom",
)


@dataclass
class LossConfig:
    """A preset ``name`` with keyword ``kwargs``.

    ``name: keras`` takes any built-in Keras loss class by ``class_name``; ``name: custom``
    imports ``_target_`` (a ``keras.losses.Loss`` subclass or a function) and passes ``kwargs``.
    """

    name: str = MISSING
    kwargs: dict[str, Any] = field(default_factory=dict)
    class_name: str | None = None
    _target_: str | None = None

    def __post_init__(self) -> None:
        _choice("loss.name", self.name, LOSS_PRESETS)
        if self.name == "keras" and not self.class_name:
            raise ConfigError("loss.class_name is missing; name a Keras loss, e.g. Huber")
        if self.name == "custom" and not self._target_:
            raise ConfigError("loss._target_ is missing; give an import path, e.g. pkg.mod.MyLoss")


# ----------------------------------------------------------------------------- optimizer
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float | None = None
    clipnorm: float | None = None

    def __post_init__(self) -> None:
        _choice("optimizer.name", self.name, OPTIMIZERS)
        _positive("optimizer.lr", self.lr)
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"optimizer.momentum={self.momentum!r} must lie in [0, 1)")
        _positive("optimizer.clipnorm", self.clipnorm, allow_none=True)


# ----------------------------------------------------------------------------- imbalance
IMBALANCE_STRATEGIES = ("none", "class_weight", "balanced", "oversample")


@dataclass
class ImbalanceConfig:
    """How the minority class is made to count.

    ``ratio`` is the weight of the minority class over the weight of the majority class.
    ``target_fraction`` is the minority share of each oversampled batch stream.
    ``initial_bias`` sets the output bias to the log prior odds, log(pos/neg).
    ``augment`` (oversampling of image data) shifts (``shift``, a fraction of the size),
    rotates (``rotation``, a fraction of a full turn) and zooms (``zoom``) each minority
    sample drawn, so repeated draws are not copies.
    """

    strategy: str = "none"
    ratio: float = 1.0
    target_fraction: float = 0.5
    initial_bias: bool = False
    augment: bool = False
    shift: float = 0.1
    rotation: float = 0.03
    zoom: float = 0.1

    def __post_init__(self) -> None:
        _choice("imbalance.strategy", self.strategy, IMBALANCE_STRATEGIES)
        _positive("imbalance.ratio", self.ratio)
        _fraction("imbalance.target_fraction", self.target_fraction)
        for key in ("shift", "rotation", "zoom"):
            _fraction(f"imbalance.{key}", getattr(self, key), low_open=False)
        if self.augment and self.strategy != "oversample":
            raise ConfigError(
                f"imbalance.augment=true augments the oversampled stream; imbalance="
                f"{self.strategy} has none: use imbalance=oversample (or augment_oversample)"
            )


# ----------------------------------------------------------------------------- trainer
@dataclass
class EarlyStoppingConfig:
    enabled: bool = False
    monitor: str = "val_loss"
    mode: str = "auto"
    patience: int = 5
    min_delta: float = 0.0
    restore_best_weights: bool = True

    def __post_init__(self) -> None:
        _choice("trainer.early_stopping.mode", self.mode, ("auto", "min", "max"))
        if self.patience < 0:
            raise ConfigError(f"trainer.early_stopping.patience={self.patience!r} must be >= 0")

    def restores(self, metric: str) -> bool:
        """Whether training ends on the weights of ``metric``'s best epoch."""
        return self.enabled and self.restore_best_weights and self.monitor == metric


@dataclass
class TrainerConfig:
    epochs: int = 20
    batch_size: int = 32
    shuffle: bool = True
    # "auto": Keras progress bar on a terminal, one line per epoch otherwise; or 0, 1, 2
    verbose: str = "auto"
    # TensorFlow threads per job (intra- and inter-op); 0 = all cores. Parallel jobs on one
    # machine should split the cores between them.
    threads: int = 0
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ConfigError(f"trainer.epochs={self.epochs!r} is not allowed; it must be > 0")
        if self.batch_size <= 0:
            raise ConfigError(
                f"trainer.batch_size={self.batch_size!r} is not allowed; it must be > 0"
            )
        _choice("trainer.verbose", str(self.verbose), ("auto", "0", "1", "2"))
        if self.threads < 0:
            raise ConfigError(f"trainer.threads={self.threads!r} is not allowed; it must be >= 0")


# ----------------------------------------------------------------------------- evaluation
THRESHOLD_RULES = ("f1", "recall_at_fpr", "recall_at_precision", "fixed")


@dataclass
class EvaluationConfig:
    """How the decision threshold is chosen on validation data.

    ``f1``: the threshold with the best F1; ``recall_at_fpr``: the highest minority recall
    whose false-positive rate on the majority is at most ``max_fpr``; ``recall_at_precision``:
    the highest recall whose precision is at least ``min_precision`` (none: nothing is called
    positive); ``fixed``: ``fixed_threshold``.
    """

    threshold: str = "f1"
    max_fpr: float = 0.01
    min_precision: float = 0.5
    fixed_threshold: float = 0.5

    def __post_init__(self) -> None:
        _choice("evaluation.threshold", self.threshold, THRESHOLD_RULES)
        _fraction("evaluation.max_fpr", self.max_fpr)
        _fraction("evaluation.min_precision", self.min_precision, high_open=False)
        _fraction("evaluation.fixed_threshold", self.fixed_threshold)


# ----------------------------------------------------------------------------- tracking
@dataclass
class TrackingConfig:
    """Where and how much MLflow records.

    ``uri`` is any MLflow tracking URI; ``artifact_location`` is used when the experiment is
    created. ``every_n_batches`` thins batch metrics (1 = every batch).
    """

    enabled: bool = True
    uri: str = MISSING
    artifact_location: str | None = None
    experiment: str | None = None
    every_n_batches: int = 1
    batch_prefix: str = "batch/"
    log_model: bool = True
    ui_hint: str | None = None
    # a store unreachable this long makes the run spill what is left next to its output
    offline_after_s: float = 120.0
    heartbeat_s: float = 60.0  # how often a run tells the store its process is alive
    stale_after_s: float = 600.0  # a RUNNING run of another host silent this long is dead

    def __post_init__(self) -> None:
        for key in ("offline_after_s", "heartbeat_s", "stale_after_s"):
            _positive(f"tracking.{key}", getattr(self, key))
        if self.every_n_batches <= 0:
            raise ConfigError(
                f"tracking.every_n_batches={self.every_n_batches!r} is not allowed; it must be >= 1"
            )


@dataclass
class PathsConfig:
    root_dir: str = MISSING
    log_dir: str = MISSING
    output_dir: str = MISSING
    data_dir: str = MISSING


@dataclass
class TrainConfig:
    """The whole composed experiment."""

    data: DataConfig = MISSING
    model: ModelConfig = MISSING
    loss: LossConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    imbalance: ImbalanceConfig = MISSING
    trainer: TrainerConfig = MISSING
    tracking: TrackingConfig = MISSING
    paths: PathsConfig = MISSING
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    task_name: str = "losslab"
    seed: int = 42
    objective: str = "val_pr_auc"
    direction: str = "maximize"
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _choice("direction", self.direction, ("maximize", "minimize"))
        images = self.data.source in IMAGE_SOURCES
        if self.model.kind == "cnn" and not images:
            raise ConfigError(
                f"model.kind=cnn needs image data; data.source={self.data.source!r} is not "
                f"one of {list(IMAGE_SOURCES)}"
            )
        if self.imbalance.augment and not images:
            raise ConfigError(
                f"imbalance.augment=true needs image data; data.source={self.data.source!r} "
                f"is not one of {list(IMAGE_SOURCES)}"
            )


def register_configs() -> None:
    """Store :class:`TrainConfig` as ``train_schema``, the first entry of ``train.yaml``.

    Every group option is merged onto its typed field, so one schema checks them all.
    """
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
    if not OmegaConf.has_resolver("losslab_study_id"):
        from losslab.objectives import direction_of
        from losslab.search.study import resolve_fingerprint

        OmegaConf.register_new_resolver("losslab_study_id", resolve_fingerprint)
        OmegaConf.register_new_resolver("losslab_direction", direction_of)


def compose(overrides: Iterable[str] = (), root: str | Path | None = None) -> Any:
    """The config ``python train.py OVERRIDES`` composes, for code outside Hydra's app (tests,
    benchmarks, pipelines). With ``root``, every folder a run writes lies under it.

    The config groups are the repository's ``conf/``, beside ``train.py``.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    paths = []
    if root is not None:
        paths = [
            f"paths.root_dir={root}",
            f"paths.output_dir={root}/out",
            f"paths.log_dir={root}/outputs",
        ]
    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(str(conf), version_base="1.3"):
        return hydra_compose("train", overrides=[*paths, *overrides])


def to_objects(cfg: Any) -> TrainConfig:
    """Turn a composed DictConfig into a validated :class:`TrainConfig`.

    Extra top-level keys (``hydra``, ``hparams_search`` leftovers) are ignored; each group is
    converted on its own so the first bad value raises :class:`ConfigError` naming its key.
    """
    from omegaconf import OmegaConf

    known = {f for f in TrainConfig.__dataclass_fields__}
    plain = {k: cfg[k] for k in cfg if k in known}
    merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), plain)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]
