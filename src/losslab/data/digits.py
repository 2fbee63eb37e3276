"""The embedded default: scikit-learn's bundled 8x8 digits as a majority-vs-minority pair."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from losslab.config.data import DigitsPairConfig
from losslab.data.dataset import DataError, Dataset
from losslab.data.splits import validation_split


def load_pair(cfg: DigitsPairConfig, seed: int) -> Dataset:
    """A balanced test set of ``test_per_class`` per class; the rest of the majority and
    ``n_minority`` minority digits for training and validation (majority 0, minority 1)."""
    digits = load_digits()
    x_all = (digits.data / 16.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    major = rng.permutation(np.flatnonzero(digits.target == cfg.majority))
    minor = rng.permutation(np.flatnonzero(digits.target == cfg.minority))
    n_test = cfg.test_per_class
    if n_test >= min(len(major), len(minor)):
        raise DataError(
            f"data.test_per_class={n_test} leaves no training data; "
            f"each digit has about {min(len(major), len(minor))} images"
        )
    test = np.concatenate([major[:n_test], minor[:n_test]])
    pool_minor = minor[n_test:]
    n_minor = len(pool_minor) if cfg.n_minority is None else cfg.n_minority
    if n_minor > len(pool_minor):
        raise DataError(
            f"data.n_minority={n_minor} but only {len(pool_minor)} images of digit "
            f"{cfg.minority} remain after the test split"
        )
    train = np.concatenate([major[n_test:], pool_minor[:n_minor]])
    x, y = x_all[train], (digits.target[train] == cfg.minority).astype(np.float32)
    x_train, y_train, x_val, y_val = validation_split(x, y, cfg, seed)
    return Dataset(
        name=f"digits_{cfg.majority}v{cfg.minority}",
        task="binary",
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_all[test],
        y_test=(digits.target[test] == cfg.minority).astype(np.float32),
        class_names=[str(cfg.majority), str(cfg.minority)],
        image_shape=(8, 8, 1),
    )
