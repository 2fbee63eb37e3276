"""Data sources, each returning the same :class:`Dataset`."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from losslab.config import DataConfig, fallback_config
from losslab.data.dataset import DataError, Dataset

__all__ = ["DataError", "Dataset", "folds", "load", "load_beside"]

log = logging.getLogger(__name__)


def data_seed(cfg: DataConfig, seed: int) -> int:
    """``data.seed`` when set, else the run's seed: what splits and samples the data."""
    return cfg.seed if cfg.seed is not None else seed


def loaders() -> dict[str, Callable[[Any, int, Path], Dataset]]:
    """Each data source's loader, by ``DataSource`` (imported when a source is loaded: each
    brings its own libraries). ``tests/test_config.py`` checks that every source has one."""
    from losslab.data import (
        arrays,
        custom,
        digits,
        image_folder,
        images,
        multilabel,
        table,
        table_leaks,  # noqa: F401 - imported where a table is loaded
        tabular,
        text,
    )

    return {
        "digits_pair": lambda cfg, seed, root: digits.load_pair(cfg, seed),
        "image_pair": lambda cfg, seed, root: images.load_pair(cfg, seed),
        "image_classes": lambda cfg, seed, root: images.load_classes(cfg, seed),
        "synthetic_fraud": lambda cfg, seed, root: tabular.load_synthetic_fraud(cfg, seed),
        "imdb": text.load_imdb,
        "multilabel": lambda cfg, seed, root: multilabel.load_multilabel(cfg, seed),
        "image_folder": image_folder.load_image_folder,
        "text_table": text.load_text_table,
        "arrays": arrays.load_arrays,
        "custom": lambda cfg, seed, root: custom.load_custom(cfg, seed),
        "table": table.load_table,
    }


def load(cfg: DataConfig, seed: int, root: str | Path = ".") -> Dataset:
    """Load the source ``cfg.source`` names; relative paths are taken from ``root``."""
    seed = data_seed(cfg, seed)
    if getattr(cfg, "fallback", None) and not cfg.path:
        log.warning(
            "data.path is not set: no table to read, so data.fallback=%s is used instead "
            "(give data.path=<file>, e.g. .../creditcard.csv.gz, for the real data)",
            cfg.fallback,
        )
        cfg = fallback_config(cfg, cfg.fallback)
    root = Path(root)
    source_dir = getattr(cfg, "source_dir", None)
    if source_dir is not None and not Path(source_dir).is_absolute():
        cfg = dataclasses.replace(cfg, source_dir=str(root / source_dir))
    return loaders()[cfg.source](cfg, seed, root)


def load_beside(cfg: DataConfig, seed: int, root: str | Path = ".") -> Callable[[], Dataset]:
    """:func:`load`, started now in a thread for a table (whose reading and encoding use
    neither Keras nor TensorFlow) so that it overlaps Keras' start (seconds each on a large
    table); other sources load when the returned function is called. Its call gives the data
    or raises the loading's error, so errors keep their order: checks made meanwhile first.
    The loaders' modules are imported here first: two threads never import one module."""
    if cfg.source != "table":
        return lambda: load(cfg, seed, root)
    loaders()  # the modules imported on this thread
    loaded: Future[Dataset] = Future()

    def run() -> None:
        try:
            loaded.set_result(load(cfg, seed, root))
        except BaseException as err:  # raised again where the data is asked for
            loaded.set_exception(err)

    threading.Thread(target=run, name="losslab-data", daemon=True).start()
    return loaded.result


def folds(ds: Dataset, cfg: DataConfig, seed: int) -> list[Dataset]:
    """``ds`` itself when ``cfg.folds`` is 1; else one dataset per stratified fold of its
    training and validation samples together (the test split is the same in each)."""
    from losslab.data.splits import stratified_folds

    if cfg.folds == 1:
        return [ds]
    seed = data_seed(cfg, seed)
    x = np.concatenate([ds.x_train, ds.x_val])
    y = np.concatenate([ds.y_train, ds.y_val])
    return [
        dataclasses.replace(ds, x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val])
        for train, val in stratified_folds(y, cfg.folds, seed, cfg.min_val_minority)
    ]
