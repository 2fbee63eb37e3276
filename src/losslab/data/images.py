"""MNIST and Fashion-MNIST: a majority-vs-minority pair, or all ten classes."""

from __future__ import annotations

import numpy as np

from losslab.config.data import ImageClassesConfig, ImagePairConfig
from losslab.data.dataset import DataError, Dataset
from losslab.data.idx import load_folder
from losslab.data.splits import subsample, validation_split

FASHION_NAMES = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
]


def _load_arrays(cfg: ImagePairConfig | ImageClassesConfig):
    if cfg.source_dir:
        return load_folder(cfg.source_dir)
    import keras

    loader = keras.datasets.mnist if cfg.dataset == "mnist" else keras.datasets.fashion_mnist
    return loader.load_data()


def _class_name(dataset: str, label: int) -> str:
    return str(label) if dataset == "mnist" else FASHION_NAMES[label]


def _flat(x: np.ndarray) -> np.ndarray:
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise DataError(f"images have shape {x.shape[1:]}; 28x28 images expected")
    return (x.reshape(len(x), -1) / 255.0).astype(np.float32)


def load_pair(cfg: ImagePairConfig, seed: int) -> Dataset:
    """All training majority images + ``n_minority`` minority images; all test images of both.

    Labels: majority 0, minority 1. The training pool is ordered majority then minority,
    which the ``tail`` validation split relies on to reproduce the reference study.
    """
    (x_tr, y_tr), (x_te, y_te) = _load_arrays(cfg)
    rng = np.random.default_rng(seed)
    major = np.flatnonzero(y_tr == cfg.majority)
    minor = np.flatnonzero(y_tr == cfg.minority)
    if cfg.n_minority is not None:
        if cfg.n_minority > len(minor):
            raise DataError(
                f"data.n_minority={cfg.n_minority} but the training split has only "
                f"{len(minor)} images of class {cfg.minority}"
            )
        minor = np.sort(rng.choice(minor, cfg.n_minority, replace=False))
    if cfg.max_majority is not None and cfg.max_majority < len(major):
        major = np.sort(rng.choice(major, cfg.max_majority, replace=False))
    idx = np.concatenate([major, minor])
    x = _flat(x_tr[idx])
    y = (y_tr[idx] == cfg.minority).astype(np.float32)
    x_train, y_train, x_val, y_val = validation_split(x, y, cfg, seed)
    test = np.flatnonzero((y_te == cfg.majority) | (y_te == cfg.minority))
    return Dataset(
        name=f"{cfg.dataset}_{cfg.majority}v{cfg.minority}",
        task="binary",
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=_flat(x_te[test]),
        y_test=(y_te[test] == cfg.minority).astype(np.float32),
        class_names=[
            _class_name(cfg.dataset, cfg.majority),
            _class_name(cfg.dataset, cfg.minority),
        ],
        image_shape=(28, 28, 1),
    )


def load_classes(cfg: ImageClassesConfig, seed: int) -> Dataset:
    """All ten classes with integer labels; ``max_train`` subsamples training, stratified."""
    (x_tr, y_tr), (x_te, y_te) = _load_arrays(cfg)
    x, y = subsample(_flat(x_tr), y_tr.astype(np.int64), cfg.max_train, seed)
    x_train, y_train, x_val, y_val = validation_split(x, y, cfg, seed)
    return Dataset(
        name=cfg.dataset,
        task="multiclass",
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=_flat(x_te),
        y_test=y_te.astype(np.int64),
        class_names=[_class_name(cfg.dataset, k) for k in range(10)],
        image_shape=(28, 28, 1),
    )
