"""Typed schemas for every config group.

Hydra merges each YAML option onto one of these dataclasses, so a misspelt key, a value of
the wrong type or a choice outside its :class:`~losslab.config.checks.Choice` fails at
composition with the key's full name. Range checks and rules that join keys live in
``__post_init__`` and run when :func:`to_objects` turns the composed config into dataclasses,
which ``losslab.train`` does before any data is loaded. This package imports neither
TensorFlow nor Keras, so ``python train.py --help`` and ``--cfg job`` stay fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from losslab.config.checks import Choice, ConfigError
from losslab.config.data import (
    IMAGE_SOURCES,
    SCHEMAS,
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
    "ValSplit",
    "compose",
    "fallback_config",
    "register_configs",
    "to_objects",
]


CONFIG_MODULE = "losslab.conf"  # the config groups, shipped in the package


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
        images = self.data.source in IMAGE_SOURCES
        needs_images = {
            "model.kind=cnn": self.model.kind == ModelKind.cnn,
            "imbalance.augment=true": self.imbalance.augment,
        }
        for setting, used in needs_images.items():
            if used and not images:
                raise ConfigError(
                    f"{setting} needs image data; data.source={self.data.source} is not one "
                    f"of {[str(s) for s in IMAGE_SOURCES]}"
                )


def register_configs() -> None:
    """Store :class:`TrainConfig` as ``train_schema`` (the first entry of ``train.yaml``) and
    each data source's schema as ``schema/data/<source>`` (the first entry of each data
    option), and register the resolvers the YAML uses."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    for source, schema in SCHEMAS.items():
        store.store(group="schema/data", name=str(source), node=schema)
    if not OmegaConf.has_resolver("losslab_study_id"):
        from losslab.objectives import direction_of, first_objective
        from losslab.search.study import resolve_fingerprint

        OmegaConf.register_new_resolver("losslab_study_id", resolve_fingerprint)
        OmegaConf.register_new_resolver("losslab_direction", direction_of)
        OmegaConf.register_new_resolver("losslab_first", first_objective)


def compose(overrides: Iterable[str] = (), root: str | Path | None = None) -> Any:
    """The config ``python train.py OVERRIDES`` composes, for code outside Hydra's app (tests,
    benchmarks, pipelines). With ``root``, every folder a run writes lies under it.

    The config groups are the package's own (``losslab.conf``, top-level ``conf/`` in a
    checkout), as for the app.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    register_configs()
    paths = []
    if root is not None:
        paths = [
            f"paths.root_dir={root}",
            f"paths.output_dir={root}/out",
            f"paths.log_dir={root}/outputs",
        ]
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        return hydra_compose("train", overrides=[*paths, *overrides])


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
    plain = {k: cfg[k] for k in cfg if k in known}
    merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), plain)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]
