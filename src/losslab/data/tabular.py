"""A synthetic stand-in for the credit-card fraud table (``data=creditcard`` is a preset of
``data=table``), of the same balance.

It follows TensorFlow's imbalanced-data tutorial: stratified train/val/test, features
standardised with training statistics only and clipped to +-``clip``.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_classification

from losslab.config.data import SyntheticFraudConfig
from losslab.data.dataset import DataError, Dataset
from losslab.data.splits import split, standardize, validation_split


def _tabular(
    name: str, x: np.ndarray, y: np.ndarray, cfg: SyntheticFraudConfig, seed: int
) -> Dataset:
    x_rest, y_rest, x_test, y_test = split(x, y, cfg.test_fraction, seed)
    x_train, y_train, x_val, y_val = validation_split(x_rest, y_rest, cfg, seed)
    x_train, x_val, x_test = standardize(x_train, x_val, x_test, clip=cfg.clip)
    return Dataset(
        name,
        "binary",
        x_train,
        y_train,
        x_val,
        y_val,
        x_test,
        y_test,
        class_names=["legit", "fraud"],
    )


def load_synthetic_fraud(cfg: SyntheticFraudConfig, seed: int) -> Dataset:
    """``make_classification`` with ``positive_fraction`` positives and no label noise."""
    x, y = make_classification(
        n_samples=cfg.n_samples,
        n_features=cfg.n_features,
        n_informative=max(2, cfg.n_features // 3),
        n_redundant=max(0, cfg.n_features // 6),
        weights=[1.0 - cfg.positive_fraction],
        flip_y=0.0,
        class_sep=cfg.class_sep,
        random_state=seed,
    )
    n_pos = int(y.sum())
    needed = int(np.ceil(3 / min(cfg.test_fraction, cfg.val_fraction)))
    if n_pos < needed:
        raise DataError(
            f"data.n_samples={cfg.n_samples} with data.positive_fraction="
            f"{cfg.positive_fraction} gives {n_pos} positives; at least {needed} are needed "
            "for every split to hold some"
        )
    return _tabular("synthetic_fraud", x, y.astype(np.float32), cfg, seed)
