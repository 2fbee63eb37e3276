"""A user's arrays as a :class:`Dataset`: from an ``.npz`` (``data=arrays``), and the step every
source of one's own data ends with (labels read as their task, images kept as images, the
test and validation splits the project's own)."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from losslab.config.data import ArraysConfig, DataConfig
from losslab.data.dataset import DataError, Dataset
from losslab.data.labels import read_labels
from losslab.data.splits import split, validation_split

NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
Pair = tuple[np.ndarray, np.ndarray]


def resolve(path: str, root: Path, what: str) -> Path:
    """``path`` taken from ``root`` when relative; a path that is not there is refused."""
    full = Path(path).expanduser()
    full = full if full.is_absolute() else root / full
    if not full.exists():
        raise DataError(f"data.path={str(full)!r} does not exist; give {what}")
    return full


def inputs(x: np.ndarray, where: str) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """Flat float32 rows and the image shape (h, w, c) of (n, h, w[, c]) inputs; uint8
    pixels are scaled to [0, 1] as the project's image sources are."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DataError(
            f"{where} has dtype {x.dtype}; inputs are numbers (bool, int, uint8 or float)"
        )
    if x.ndim not in (2, 3, 4):
        raise DataError(
            f"{where} has shape {x.shape}; inputs are (n, features) or images (n, h, w[, c])"
        )
    image_shape = None
    if x.ndim > 2:
        image_shape = (*x.shape[1:3], x.shape[3] if x.ndim == 4 else 1)
    flat = x.reshape(len(x), -1)
    if x.dtype == np.uint8:
        return (flat / 255.0).astype(np.float32), image_shape
    return flat.astype(np.float32), image_shape


@dataclass(frozen=True)
class Origin:
    """Where arrays came from: the data set's name, and the option and labels messages name."""

    name: str
    where: str  # data.path=..., data._target_=...
    labels: str = "y_train"


def to_dataset(
    train: Pair, test: Pair | None, cfg: DataConfig, seed: int, origin: Origin
) -> Dataset:
    """The labels read as their task (``cfg.positive`` names a binary minority); the test
    split a stratified ``test_fraction`` when ``test`` is None, then validation likewise."""
    where, labels = origin.where, origin.labels
    coding = read_labels(train[1], getattr(cfg, "positive", None), f"{where}: {labels}")
    x, image_shape = inputs(train[0], f"{where}: x_train")
    y = coding.apply(train[1], f"{where}: {labels}")
    _same_length(x, y, f"{where}: x_train", labels)
    if test is None:
        x, y, x_test, y_test = split(x, y, cfg.test_fraction, seed)
    else:
        x_test, test_shape = inputs(test[0], f"{where}: x_test")
        y_test = coding.apply(test[1], f"{where}: y_test")
        _same_length(x_test, y_test, f"{where}: x_test", "y_test")
        if test_shape != image_shape or x_test.shape[1:] != x.shape[1:]:
            raise DataError(
                f"{where}: x_test has shape {np.shape(test[0])[1:]} per sample, x_train "
                f"{np.shape(train[0])[1:]}; they must match"
            )
    x_train, y_train, x_val, y_val = validation_split(x, y, cfg, seed)
    return Dataset(
        origin.name,
        coding.task,
        x_train,
        y_train,
        x_val,
        y_val,
        x_test,
        y_test,
        class_names=coding.class_names,
        image_shape=image_shape,
    )


def _same_length(x: np.ndarray, y: np.ndarray, x_name: str, y_name: str) -> None:
    if len(x) != len(y):
        raise DataError(f"{x_name} has {len(x)} samples but {y_name} {len(y)}; they must match")


def read_npz(path: Path, names: Sequence[str] = NPZ_ARRAYS) -> dict[str, np.ndarray]:
    """The arrays ``names`` of ``path`` that it holds, read with ``allow_pickle=False``: an
    object array (pickled, so able to run code) is refused with its name."""
    where = f"data.path={str(path)!r}"
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise DataError(f"{where}: not an .npz file ({err})") from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{where}: a single .npy array; give an .npz with x_train and y_train")
    arrays = {}
    with archive:
        for name in (n for n in names if n in archive.files):
            try:
                arrays[name] = archive[name]
            except ValueError:  # "Object arrays cannot be loaded when allow_pickle=False"
                raise DataError(
                    f"{where}: {name} is an object array, stored with pickle; only numeric "
                    "arrays are read (np.savez with numbers or strings, no Python objects)"
                ) from None
    return arrays


def load_arrays(cfg: ArraysConfig, seed: int, root: Path) -> Dataset:
    """``x_train``, ``y_train`` and, when both are there, ``x_test`` and ``y_test``."""
    path = resolve(cfg.path, root, "an .npz with x_train and y_train")  # type: ignore[arg-type]
    arrays = read_npz(path)
    where = f"data.path={str(path)!r}"
    missing = [n for n in ("x_train", "y_train") if n not in arrays]
    if missing:
        raise DataError(f"{where} lacks {missing}; an .npz needs x_train and y_train")
    has_test = [n for n in ("x_test", "y_test") if n in arrays]
    if len(has_test) == 1:
        raise DataError(f"{where} holds {has_test[0]} alone; give x_test with y_test, or neither")
    test = (arrays["x_test"], arrays["y_test"]) if has_test else None
    train = (arrays["x_train"], arrays["y_train"])
    return to_dataset(train, test, cfg, seed, Origin(path.stem, where))
