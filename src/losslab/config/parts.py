"""The schemas of the model, loss, optimizer, imbalance, trainer, evaluation and tracking
groups. Each default is written here once; the YAML options hold only what they change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from losslab.config.checks import Choice, ConfigError, at_least, fraction, one_of, positive


# ----------------------------------------------------------------------------- model
class ModelKind(Choice):
    mlp = "mlp"
    cnn = "cnn"


@dataclass
class ModelConfig:
    """An MLP: hidden ``units``, each followed by ``dropout``, with L2 on every kernel.

    ``kind: cnn`` puts convolution blocks (``filters``, each a 3x3 convolution and 2x2
    max-pooling) in front of the dense layers; it needs image data.
    """

    kind: ModelKind = ModelKind.mlp
    units: list[int] = field(default_factory=lambda: [64, 32])
    activation: str = "relu"
    dropout: float = 0.0
    l2: float = 0.0
    filters: list[int] = field(default_factory=lambda: [32, 64])

    def __post_init__(self) -> None:
        if not self.units or any(u <= 0 for u in self.units):
            raise ConfigError(f"model.units={list(self.units)!r}: give one or more sizes > 0")
        if self.kind == ModelKind.cnn and (not self.filters or any(f <= 0 for f in self.filters)):
            raise ConfigError(f"model.filters={list(self.filters)!r}: give one or more sizes > 0")
        fraction("model.dropout", self.dropout, low_open=False)
        at_least("model.l2", self.l2, 0)


# ----------------------------------------------------------------------------- loss
class LossPreset(Choice):
    bce = "bce"
    weighted_bce = "weighted_bce"
    focal = "focal"
    categorical_ce = "categorical_ce"
    sparse_categorical_ce = "sparse_categorical_ce"
    categorical_focal = "categorical_focal"
    keras = "keras"  # any built-in Keras loss class, by class_name
    custom = "custom"  # any import path, by _target_


@dataclass
class LossConfig:
    """A preset ``name`` with keyword ``kwargs``.

    ``name: keras`` takes any built-in Keras loss class by ``class_name``; ``name: custom``
    imports ``_target_`` (a ``keras.losses.Loss`` subclass or a function) and passes ``kwargs``.
    """

    name: LossPreset = MISSING
    kwargs: dict[str, Any] = field(default_factory=dict)
    class_name: str | None = None
    _target_: str | None = None

    def __post_init__(self) -> None:
        if self.name == LossPreset.keras and not self.class_name:
            raise ConfigError("loss.class_name is missing; name a Keras loss, e.g. Huber")
        if self.name == LossPreset.custom and not self._target_:
            raise ConfigError("loss._target_ is missing; give an import path, e.g. pkg.mod.MyLoss")


# ----------------------------------------------------------------------------- optimizer
class OptimizerName(Choice):
    adam = "adam"
    adamw = "adamw"
    rmsprop = "rmsprop"
    sgd = "sgd"


@dataclass
class OptimizerConfig:
    name: OptimizerName = OptimizerName.adam
    lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float | None = None
    clipnorm: float | None = None

    def __post_init__(self) -> None:
        positive("optimizer.lr", self.lr)
        if not 0 <= self.momentum < 1:
            raise ConfigError(
                f"optimizer.momentum={self.momentum!r} is not allowed; it must lie in [0, 1)"
            )
        at_least("optimizer.weight_decay", self.weight_decay, 0, allow_none=True)
        positive("optimizer.clipnorm", self.clipnorm, allow_none=True)


# ----------------------------------------------------------------------------- imbalance
class ImbalanceStrategy(Choice):
    none = "none"
    class_weight = "class_weight"
    balanced = "balanced"
    oversample = "oversample"


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

    strategy: ImbalanceStrategy = ImbalanceStrategy.none
    ratio: float = 1.0
    target_fraction: float = 0.5
    initial_bias: bool = False
    augment: bool = False
    shift: float = 0.1
    rotation: float = 0.03
    zoom: float = 0.1

    def __post_init__(self) -> None:
        positive("imbalance.ratio", self.ratio)
        fraction("imbalance.target_fraction", self.target_fraction)
        for key in ("shift", "rotation", "zoom"):
            fraction(f"imbalance.{key}", getattr(self, key), low_open=False)
        if self.augment and self.strategy != ImbalanceStrategy.oversample:
            raise ConfigError(
                f"imbalance.augment=true augments the oversampled stream; imbalance="
                f"{self.strategy} has none: use imbalance=oversample (or oversample_augment)"
            )


# ----------------------------------------------------------------------------- trainer
class MonitorMode(Choice):
    auto = "auto"  # the objective's direction when it is monitored, else the metric's own
    min = "min"
    max = "max"


@dataclass
class EarlyStoppingConfig:
    """Keras' ``EarlyStopping`` on ``monitor``: by default the run's objective, since a plain
    ``val_loss`` misleads under class weights (it is the weighted loss)."""

    enabled: bool = False
    monitor: str = "${losslab_first:${objective}}"
    mode: MonitorMode = MonitorMode.auto
    patience: int = 5
    min_delta: float = 0.0
    restore_best_weights: bool = True

    def __post_init__(self) -> None:
        at_least("trainer.early_stopping.patience", self.patience, 0)

    def restores(self, metric: str) -> bool:
        """Whether training ends on the weights of ``metric``'s best epoch."""
        return self.enabled and self.restore_best_weights and self.monitor == metric


VERBOSITY = ["auto", "0", "1", "2"]


@dataclass
class TrainerConfig:
    """``verbose``: ``auto`` prints one short line per epoch (:mod:`losslab.console`); or
    Keras' own 0 (nothing), 1 (progress bar), 2 (every metric). ``threads``: CPU threads per
    job (TensorFlow's intra- and inter-op pools, PyTorch's; refused under JAX), 0 = all cores;
    parallel jobs on one machine should split the cores."""

    epochs: int = 20
    batch_size: int = 32
    shuffle: bool = True
    verbose: str = "auto"
    threads: int = 0
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)

    def __post_init__(self) -> None:
        at_least("trainer.epochs", self.epochs, 1)
        at_least("trainer.batch_size", self.batch_size, 1)
        one_of("trainer.verbose", str(self.verbose), VERBOSITY)
        at_least("trainer.threads", self.threads, 0)


# ----------------------------------------------------------------------------- evaluation
class ThresholdRule(Choice):
    f1 = "f1"
    recall_at_fpr = "recall_at_fpr"
    fpr_bound = "fpr_bound"
    recall_at_precision = "recall_at_precision"
    fixed = "fixed"


@dataclass
class EvaluationConfig:
    """How the decision threshold is chosen on validation data.

    ``f1``: the threshold with the best F1; ``recall_at_fpr``: the highest minority recall
    whose false-positive rate on the majority is at most ``max_fpr`` (also the bound of every
    ``*_recall_at_fpr`` metric); ``fpr_bound``: the lowest threshold whose validation
    false-positive rate has an exact upper bound at ``confidence`` of at most ``max_fpr``
    (:mod:`losslab.operating_point`); ``recall_at_precision``: the highest recall whose
    precision is at least ``min_precision`` (none: nothing is called positive); ``fixed``:
    ``fixed_threshold``. Every binary run logs the bound at its threshold at ``confidence``.
    """

    threshold: ThresholdRule = ThresholdRule.recall_at_fpr
    max_fpr: float = 0.01
    confidence: float = 0.95
    min_precision: float = 0.5
    fixed_threshold: float = 0.5

    def __post_init__(self) -> None:
        fraction("evaluation.max_fpr", self.max_fpr)
        fraction("evaluation.confidence", self.confidence)
        fraction("evaluation.min_precision", self.min_precision, high_open=False)
        fraction("evaluation.fixed_threshold", self.fixed_threshold)


# ----------------------------------------------------------------------------- tracking
class IfUnreachable(Choice):
    fail = "fail"  # stop before the data is loaded, naming the URI and the fix
    offline = "offline"  # record into the spill folder from the first point


@dataclass
class TrackingConfig:
    """Where and how much MLflow records.

    ``uri`` is any MLflow tracking URI; ``artifact_location`` is used when the experiment is
    created; ``experiment`` defaults to ``task_name``. ``every_n_batches`` thins batch metrics
    (1 = every batch); ``batch_prefix`` prefixes their keys. A store unreachable for
    ``offline_after_s`` makes the run spill what is left to ``<output>/mlflow_spill``; the run
    refreshes its heartbeat tag every ``heartbeat_s``, and a RUNNING run silent for
    ``stale_after_s`` (or of a dead local process) is marked KILLED. A store that does not
    answer at start ends the job at once (``if_unreachable: fail``) or starts it spilling
    (``offline``).
    """

    enabled: bool = True
    uri: str = MISSING
    artifact_location: str | None = None
    experiment: str | None = None
    every_n_batches: int = 1
    batch_prefix: str = "batch/"
    log_model: bool = True
    ui_hint: str | None = None
    offline_after_s: float = 120.0
    if_unreachable: IfUnreachable = IfUnreachable.fail
    heartbeat_s: float = 60.0
    stale_after_s: float = 600.0

    def __post_init__(self) -> None:
        for key in ("offline_after_s", "heartbeat_s", "stale_after_s"):
            positive(f"tracking.{key}", getattr(self, key))
        at_least("tracking.every_n_batches", self.every_n_batches, 1)


@dataclass
class PathsConfig:
    root_dir: str = MISSING
    log_dir: str = MISSING
    output_dir: str = MISSING
    data_dir: str = MISSING
