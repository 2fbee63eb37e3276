"""IMDB reviews as multi-hot bag-of-words vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from losslab.config.data import ImdbConfig
from losslab.data.dataset import DataError, Dataset
from losslab.data.npz import load_npz
from losslab.data.splits import subsample, validation_split


def multi_hot(sequences, num_words: int) -> np.ndarray:
    """One row per sequence with 1 at every word index below ``num_words``."""
    out = np.zeros((len(sequences), num_words), dtype=np.float32)
    for row, seq in enumerate(sequences):
        idx = np.asarray(seq, dtype=np.int64)
        out[row, idx[idx < num_words]] = 1.0
    return out


def _load_arrays(cfg: ImdbConfig, root: Path):
    if cfg.path is None:
        import keras

        return keras.datasets.imdb.load_data(num_words=cfg.num_words)
    path = Path(cfg.path) if Path(cfg.path).is_absolute() else root / cfg.path
    if not path.is_file():
        raise DataError(f"data.path={str(path)!r} does not exist; give an imdb.npz")
    arrays = load_npz(path)  # Keras' own imdb.npz holds object arrays: no plain pickle
    missing = {"x_train", "y_train", "x_test", "y_test"} - set(arrays)
    if missing:
        raise DataError(f"{path} lacks arrays {sorted(missing)}")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def load_imdb(cfg: ImdbConfig, seed: int, root: Path) -> Dataset:
    (x_tr, y_tr), (x_te, y_te) = _load_arrays(cfg, root)
    x = multi_hot(x_tr, cfg.num_words)
    y = np.asarray(y_tr, dtype=np.float32)
    x, y = subsample(x, y, cfg.max_train, seed)
    x_train, y_train, x_val, y_val = validation_split(x, y, cfg, seed)
    return Dataset(
        "imdb",
        "binary",
        x_train,
        y_train,
        x_val,
        y_val,
        multi_hot(x_te, cfg.num_words),
        np.asarray(y_te, dtype=np.float32),
        class_names=["negative", "positive"],
    )
