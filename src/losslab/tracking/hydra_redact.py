"""Hydra callback: the job's ``.hydra/`` files and the sweep's ``multirun.yaml`` with every
secret masked.

Hydra writes the composed config, its own config and the overrides to the output folder
before the job starts, as given: a password in ``tracking.uri`` or a storage URL, or a token
in an override, would sit in clear beside the job's plots. They are rewritten here, on
``on_job_start``, before anything else reads them; the masking is :mod:`redact`'s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from losslab.tracking.redact import redact_text, redact_tree


def redact_file(path: Path) -> None:
    """Rewrite one of Hydra's YAML files masked, atomically (jobs of a sweep share
    ``multirun.yaml``)."""
    if not path.is_file():
        return
    data = yaml.safe_load(path.read_text())
    if isinstance(data, list):
        clean: Any = [redact_text(str(item)) for item in data]
    else:
        clean = redact_tree(data)
    if clean == data:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(yaml.safe_dump(clean, sort_keys=False))
    os.replace(tmp, path)


class RedactHydraFiles(Callback):
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        hydra = config.hydra
        output = Path(hydra.runtime.output_dir)
        if hydra.output_subdir is not None:
            for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
                redact_file(output / str(hydra.output_subdir) / name)
        if hydra.mode == RunMode.MULTIRUN:
            redact_file(Path(hydra.sweep.dir) / "multirun.yaml")
