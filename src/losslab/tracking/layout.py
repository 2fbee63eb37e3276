"""Which MLflow key each Keras log name is recorded under: losslab's layout or Neptune's.

Neptune's layout is the one neptune-exporter writes a migrated Neptune history in, so new runs
and migrated ones meet on the same keys: under a base namespace (``training``),
``train/batch/<name>``, ``train/epoch/<name>``, ``validation/batch/<name>``,
``validation/epoch/<name>`` (``val_`` dropped), ``model/learning_rate`` per epoch, and params
under ``fit_params/...`` and ``model/optimizer_config/...``; each key with the characters
outside ``[A-Za-z0-9_\\-. /]`` replaced by ``_`` and cut at 250 characters, as the exporter
writes them. A name is turned into its key once (a :class:`Keys` map, filled by the writer
thread the first time it meets the name), so a batch costs what it costs in losslab's layout.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

LAYOUTS = ("losslab", "neptune")
KEY_CHARS = 250  # MLflow's longest metric and param key, where neptune-exporter cuts
_NOT_IN_KEY = re.compile(r"[^a-zA-Z0-9_\-.\s/]")  # neptune-exporter's replacement
_NEPTUNE_SKIPS = ("batch", "size")  # names Neptune's callback never logs
_LOSSLAB_ONLY = ("epoch_time_s", "samples_per_second")  # not in Neptune's callback


def neptune_key(path: str) -> str:
    """An attribute path as neptune-exporter writes it into MLflow."""
    return _NOT_IN_KEY.sub("_", path)[:KEY_CHARS]


class Keys(dict):
    """Log name -> MLflow key (None: not recorded), each computed on first use."""

    def __init__(self, make: Callable[[str], str | None]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, name: str) -> str | None:
        key = self[name] = self._make(name)
        return key


@dataclass
class Layout:
    """Where a fit's points go: for batch, epoch and validation-batch logs, a prefix (losslab's
    layout) or a :class:`Keys` map (None: that kind is not recorded)."""

    batch: str | Keys | None
    epoch: str | Keys
    val_batch: Keys | None = None
    namespace: str | None = None  # Neptune's base namespace; None in losslab's layout

    def params(self, fit_params: Mapping[str, Any], optimizer: Mapping[str, Any]) -> dict:
        """What Neptune's callback assigns at train begin, as flat MLflow params (nothing in
        losslab's layout)."""
        if self.namespace is None:
            return {}
        tree = {"fit_params": dict(fit_params), "model": {"optimizer_config": dict(optimizer)}}
        return {neptune_key(k): str(v) for k, v in _paths(tree, self.namespace).items()}


def _paths(node: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}/{key}"
        out.update(_paths(value, path) if isinstance(value, Mapping) else {path: value})
    return out


def losslab(prefix: str = "", batch_prefix: str = "batch/") -> Layout:
    """``batch/<name>`` at the global batch, ``<name>`` and ``val_<name>`` at the epoch."""
    return Layout(batch=prefix + batch_prefix, epoch=prefix)


def neptune(namespace: str = "training", on_batch: bool = True) -> Layout:
    """neptune-tensorflow-keras' ``NeptuneCallback`` keys, as neptune-exporter maps them."""
    ns = namespace.rstrip("/")

    def batch(kind: str) -> Keys:
        def key(name: str) -> str | None:
            skip = name in _NEPTUNE_SKIPS or name.startswith("val_")
            return None if skip else neptune_key(f"{ns}/{kind}/batch/{name}")

        return Keys(key)

    def epoch(name: str) -> str | None:
        if name in _LOSSLAB_ONLY:
            return None
        if name == "learning_rate":
            return neptune_key(f"{ns}/model/learning_rate")
        if name.startswith("val_"):
            return neptune_key(f"{ns}/validation/epoch/{name[4:]}")
        return neptune_key(f"{ns}/train/epoch/{name}")

    return Layout(
        batch=batch("train") if on_batch else None,
        epoch=Keys(epoch),
        val_batch=batch("validation") if on_batch else None,
        namespace=ns,
    )


def make(name: str, prefix: str, batch_prefix: str) -> Layout:
    """The layout called ``name``; in Neptune's, ``prefix`` is the base namespace."""
    if name == "losslab":
        return losslab(prefix, batch_prefix)
    if name == "neptune":
        return neptune(prefix or "training")
    raise ValueError(f"layout={name}: one of {', '.join(LAYOUTS)}")
