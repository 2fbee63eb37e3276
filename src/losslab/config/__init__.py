"""Typed schemas for every config group.

Hydra merges each YAML option onto one of these dataclasses, so a misspelt key, a value of
the wrong type or a choice outside its :class:`~losslab.config.checks.Choice` fails at
composition with the key's full name. Range checks and rules that join keys live in
``__post_init__`` and run when :func:`to_objects` turns the composed config into dataclasses,
which ``losslab.train`` does before any data is loaded. This package imports neither
TensorFlow nor Keras, so ``python train.py --help`` and ``--cfg job`` stay fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from losslab.config.checks import Choice, ConfigError
from losslab.config.data import (
    IMAGE_SOURCES,
    SCHEMAS,
    SHAPE_AT_LOAD,
    DataConfig,
    DataSource,
    ImageDataset,
    ValSplit,
    fallback_config,
)
from losslab.config.parts import (
    EarlyStoppingConfig,
    EvaluationConfig,
    IfUnreachable,
    ImbalanceConfig,
    ImbalanceStrategy,
    LossConfig,
    LossPreset,
    ModelConfig,
    ModelKind,
    MonitorMode,
    OptimizerConfig,
    OptimizerName,
    PathsConfig,
    ThresholdRule,
    TrackingConfig,
    TrainerConfig,
)

__all__ = [
    "IMAGE_SOURCES",
    "Choice",
    "ConfigError",
    "DataConfig",
    "DataSource",
    "Direction",
    "EarlyStoppingConfig",
    "EvaluationConfig",
    "ImageDataset",
    "ImbalanceConfig",
    "ImbalanceStrategy",
    "LossConfig",
    "LossPreset",
    "ModelConfig",
    "ModelKind",
    "MonitorMode",
    "OptimizerConfig",
    "OptimizerName",
    "PathsConfig",
    "IfUnreachable",
    "ThresholdRule",
    "TrackingConfig",
    "TrainConfig",
    "TrainerConfig",
    "SCHEMAS",
    "ValSplit",
    "fallback_config",
    "to_objects",
]


class Direction(Choice):
    maximize = "maximize"
    minimize = "minimize"


@dataclass
class TrainConfig:
    """The whole composed experiment.

    ``task_name`` names the MLflow experiment; ``seed`` seeds splits, weights and sampling.
    ``objective`` is the value returned to sweeps: an epoch metric of the best epoch
    (``val_recall_at_fpr``, ``val_pr_auc``, ...) or ``val_final_*`` / ``val_at_threshold_*``
    from evaluation (``test_*`` is refused in sweeps); ``direction`` defaults to the
    objective's own (see :mod:`losslab.objectives`). Both may be lists, one direction per
    objective, for a multi-objective sweep; the first objective is the one early stopping
    monitors and the terminal line shows first. ``tags``: extra MLflow tags.
    """

    data: DataConfig = MISSING
    model: ModelConfig = MISSING
    loss: LossConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    imbalance: ImbalanceConfig = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = MISSING
    paths: PathsConfig = MISSING
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    task_name: str = "losslab"
    seed: int = 42
    objective: Any = "val_pr_auc"  # a name, or a list of names
    direction: Any = "${losslab_direction:${objective}}"  # a direction, or one per objective
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def objectives(self) -> list[str]:
        return [self.objective] if isinstance(self.objective, str) else list(self.objective)

    @property
    def directions(self) -> list[str]:
        return [self.direction] if isinstance(self.direction, str) else list(self.direction)

    def _check_objectives(self) -> None:
        if not self.objectives or not all(isinstance(o, str) for o in self.objectives):
            raise ConfigError(f"objective={self.objective!r}: give a metric name or a list")
        for direction in self.directions:
            if direction not in (d.value for d in Direction):
                raise ConfigError(f"direction={direction!r}: use maximize or minimize")
        if len(self.directions) != len(self.objectives):
            raise ConfigError(
                f"direction={self.direction!r} for objective={self.objective!r}: give one "
                "direction per objective"
            )

    def __post_init__(self) -> None:
        self._check_objectives()
        if not 0 <= self.seed < 2**31 - 1000:  # seed + fold stays a valid NumPy/TF seed
            raise ConfigError(
                f"seed={self.seed} is not allowed; use an integer in [0, 2**31 - 1000)"
            )
        used, images = self.image_settings(), IMAGE_SOURCES + SHAPE_AT_LOAD
        if used and self.data.source not in images:
            raise ConfigError(
                f"{used[0]} needs image data; data.source={self.data.source} is not one "
                f"of {[str(s) for s in images]}"
            )

    def image_settings(self) -> list[str]:
        """The settings in use that need images (checked here against the source, and once
        the data is loaded against its shape, for sources that tell only then)."""
        needs_images = {
            "model.kind=cnn": self.model.kind == ModelKind.cnn,
            "imbalance.augment=true": self.imbalance.augment,
        }
        return [setting for setting, used in needs_images.items() if used]


def to_objects(cfg: Any) -> TrainConfig:
    """Turn a composed DictConfig into a validated :class:`TrainConfig`.

    The ``hydra`` node is Hydra's own; any other key the schema lacks (``+foo=1``) is refused,
    since it would be logged as a parameter and change nothing. The first bad value raises
    :class:`ConfigError` naming its key.
    """
    from omegaconf import OmegaConf

    known = set(TrainConfig.__dataclass_fields__)
    unknown = [k for k in cfg if k not in known and k != "hydra"]
    if unknown:
        raise ConfigError(
            f"{unknown[0]}={cfg[unknown[0]]!r}: no such key; the top-level keys are "
            f"{sorted(known)} (extra MLflow tags go under +tags.NAME=value)"
        )
    for key in known & set(cfg):
        unknown = next(_unknown_keys(cfg[key], f"{key}."), None)
        if unknown is not None:  # +trainer.epoch=2, the fix Hydra's hint suggests for a typo
            parent, _, name = unknown.rpartition(".")
            keys = sorted(str(k) for k in OmegaConf.select(cfg, parent) if k != name)
            value = OmegaConf.select(cfg, unknown)
            raise ConfigError(f"{unknown}={value}: no such key; the keys of {parent} are {keys}")
    plain = {k: cfg[k] for k in cfg if k in known}
    merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), plain)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def _unknown_keys(node: Any, prefix: str) -> Iterator[str]:
    """Full names of keys that a schema node holds but its dataclass does not have: Hydra
    adds ``+`` keys to a structured node, and OmegaConf's merge keeps them, silently.
    Mappings (``tags``, ``loss.kwargs``) take any key."""
    from dataclasses import fields, is_dataclass

    from omegaconf import DictConfig

    if not isinstance(node, DictConfig) or not is_dataclass(node._metadata.object_type):
        return
    names = {f.name for f in fields(node._metadata.object_type)}
    for key in node:
        if key not in names:
            yield f"{prefix}{key}"
        else:
            yield from _unknown_keys(node._get_node(key), f"{prefix}{key}.")
