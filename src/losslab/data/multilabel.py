"""Many sigmoid outputs with few ones each, where Keras' class_weight cannot apply."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_multilabel_classification

from losslab.config.data import MultilabelConfig
from losslab.data.dataset import Dataset
from losslab.data.splits import split, standardize, validation_split


def load_multilabel(cfg: MultilabelConfig, seed: int) -> Dataset:
    """About ``labels_per_sample / n_labels`` of the label matrix is ones (8% by default)."""
    x, y = make_multilabel_classification(
        n_samples=cfg.n_samples,
        n_features=cfg.n_features,
        n_classes=cfg.n_labels,
        n_labels=cfg.labels_per_sample,
        allow_unlabeled=True,
        random_state=seed,
    )
    y = y.astype(np.float32)
    x_rest, y_rest, x_test, y_test = split(x, y, cfg.test_fraction, seed)
    x_train, y_train, x_val, y_val = validation_split(x_rest, y_rest, cfg, seed)
    x_train, x_val, x_test = standardize(x_train, x_val, x_test)
    return Dataset(
        "multilabel",
        "multilabel",
        x_train,
        y_train,
        x_val,
        y_val,
        x_test,
        y_test,
        class_names=[f"label_{k}" for k in range(cfg.n_labels)],
    )
