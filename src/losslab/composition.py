"""The composed config: schemas and resolvers registered with Hydra, and ``compose`` for code
outside Hydra's app.

The resolvers the YAML uses read a sweep's identity (:mod:`losslab.search.study`) and the
objectives' directions (:mod:`losslab.objectives`), so registering them is wiring, above the
schemas in :mod:`losslab.config` that every layer imports.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CONFIG_MODULE = "losslab.conf"  # the config groups (top-level conf/), shipped in the package


@functools.cache  # once a process: the store and the resolvers outlive every compose
def register() -> None:
    """Store :class:`~losslab.config.TrainConfig` as ``train_schema`` (the first entry of
    ``train.yaml``) and each data source's schema as ``schema/data/<source>`` (the first entry
    of each data option), and register the resolvers the YAML uses."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from losslab.config import SCHEMAS, TrainConfig

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


def compose(
    overrides: Iterable[str] = (), root: str | Path | None = None, with_hydra: bool = False
) -> Any:
    """The config ``python train.py OVERRIDES`` composes, for code outside Hydra's app (tests,
    benchmarks, pipelines). With ``root``, every folder a run writes lies under it; with
    ``with_hydra``, Hydra's own node (sweeper, launcher) is kept in it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    register()
    paths = []
    if root is not None:
        paths = [
            f"paths.root_dir={root}",
            f"paths.output_dir={root}/out",
            f"paths.log_dir={root}/outputs",
        ]
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        return hydra_compose(
            "train", overrides=[*paths, *overrides], return_hydra_config=with_hydra
        )
