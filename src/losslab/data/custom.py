"""Your own loader, by import path (``data=custom data._target_=pkg.module.load``), imported as
``loss._target_`` is; what it returns is read as ``data=arrays`` reads an ``.npz``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from losslab.config.checks import ConfigError
from losslab.config.data import CustomDataConfig
from losslab.data.arrays import Origin, to_dataset
from losslab.data.dataset import DataError, Dataset

RETURNS = (
    "return (x, y), (x_train, y_train, x_test, y_test) or a pandas DataFrame of numeric "
    "columns and the data.label column"
)


def import_loader(path: str) -> Callable[..., Any]:
    """The function at ``path``; one that cannot be imported or called is a :class:`ConfigError`."""
    module, _, name = path.rpartition(".")
    if not module:
        raise ConfigError(f"data._target_={path!r} is not an import path like pkg.module.load")
    try:
        loader = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        hint = "; is its folder on PYTHONPATH?" if isinstance(err, ModuleNotFoundError) else ""
        raise ConfigError(f"data._target_={path!r} cannot be imported: {err}{hint}") from None
    if not callable(loader):
        raise ConfigError(f"data._target_={path!r} is a {type(loader).__name__}, not a function")
    return loader


def _from_frame(frame: pd.DataFrame, cfg: CustomDataConfig, where: str):
    if cfg.label is None or cfg.label not in frame.columns:
        raise DataError(
            f"data.label={cfg.label}: {where} returned a DataFrame; name its label column "
            f"(one of {list(frame.columns)[:10]})"
        )
    features = frame.drop(columns=cfg.label)
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if text:
        raise DataError(
            f"{where} returned columns {text} that are not numeric; encode them in the "
            "loader (or read the file with data=table)"
        )
    return features.to_numpy(np.float32), frame[cfg.label].to_numpy()


def _pairs(returned: Any, cfg: CustomDataConfig, where: str):
    """(train, test or None) from what the loader returned, or a :class:`DataError`."""
    if isinstance(returned, pd.DataFrame):
        return _from_frame(returned, cfg, where), None
    if isinstance(returned, tuple | list) and len(returned) in (2, 4):
        arrays = [np.asarray(a) for a in returned]
        if len(arrays) == 2:
            return (arrays[0], arrays[1]), None
        return (arrays[0], arrays[1]), (arrays[2], arrays[3])
    kind = type(returned).__name__
    size = f" of {len(returned)}" if isinstance(returned, tuple | list) else ""
    raise DataError(f"{where} returned a {kind}{size}; {RETURNS}")


def load_custom(cfg: CustomDataConfig, seed: int) -> Dataset:
    """Call the loader with ``kwargs`` and read its arrays."""
    loader = import_loader(cfg._target_)  # type: ignore[arg-type]
    where = f"data._target_={cfg._target_}"
    train, test = _pairs(loader(**cfg.kwargs), cfg, where)
    return to_dataset(train, test, cfg, seed, Origin(str(cfg._target_), where))
