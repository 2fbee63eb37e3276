"""A folder of images, one sub-folder per class, as Keras' ``image_dataset_from_directory``
lays it out and lists it (sorted class folders, image files at any depth below each).

Each file is decoded on its own with ``keras.utils.load_img`` rather than through the
``tf.data`` stream ``image_dataset_from_directory`` returns: a file that does not decode
must be refused by its path before training, which that stream cannot name; and every
image is needed in memory anyway for the stratified splits and oversampling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from losslab.config.data import ImageFolderConfig
from losslab.data.arrays import Origin, resolve, to_dataset
from losslab.data.dataset import DataError, Dataset

# the files image_dataset_from_directory lists
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def list_classes(folder: Path) -> dict[str, list[Path]]:
    """Each class folder's image files; an empty class folder is refused by its path. A
    hidden folder (``.ipynb_checkpoints``, ``.DS_Store``'s kin) is not a class."""
    where = f"data.path={str(folder)!r}"
    if not folder.is_dir():
        raise DataError(f"{where} is a file; give a folder with one sub-folder of images per class")
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = {
        c.name: sorted(f for f in c.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
        for c in classes
    }
    empty = [str(folder / name) for name, found in files.items() if not found]
    if empty:
        raise DataError(
            f"{where}: class folder {empty[0]} holds no images "
            f"({', '.join(IMAGE_EXTENSIONS)}); every class needs some"
        )
    if len(files) < 2:
        found = list(files) or "no sub-folders"
        raise DataError(
            f"{where} holds {found}; a classifier needs two class folders or more, "
            "one sub-folder of images per class"
        )
    return files


def read_image(path: Path, cfg: ImageFolderConfig) -> np.ndarray:
    """One image as (h, w, c) float32 pixels in [0, 255], or a :class:`DataError` naming it."""
    import keras

    size = tuple(cfg.image_size) if cfg.image_size is not None else None
    try:
        image = keras.utils.load_img(
            path, color_mode=str(cfg.color_mode), target_size=size, interpolation="bilinear"
        )
    except Exception as err:  # PIL raises its own errors, OSError and ValueError among them
        raise DataError(
            f"data.path: {path} does not decode as an image ({type(err).__name__}); "
            "remove it or replace it with a readable image"
        ) from err
    return keras.utils.img_to_array(image, dtype="float32")


def read_images(files: dict[str, list[Path]], cfg: ImageFolderConfig) -> tuple[np.ndarray, list]:
    """Every image, all of one size, scaled to [0, 1], and its class folder's name."""
    images, labels, first = [], [], None
    for name, paths in files.items():
        for path in paths:
            image = read_image(path, cfg)
            if first is None:
                first = (path, image.shape)
            elif image.shape != first[1]:
                raise DataError(
                    f"data.image_size=null: {path} is {image.shape[:2]} but {first[0]} is "
                    f"{first[1][:2]}; give data.image_size=[height,width] to resize them all"
                )
            images.append(image)
            labels.append(name)
    return (np.stack(images) / 255.0).astype(np.float32), labels


def load_image_folder(cfg: ImageFolderConfig, seed: int, root: Path) -> Dataset:
    """Two classes: binary with ``positive`` (default: the smaller folder) as 1; more: one
    class id per folder in sorted order. Pixels scaled to [0, 1], images kept as images."""
    folder = resolve(cfg.path, root, "a folder with one sub-folder of images per class")  # type: ignore[arg-type]
    files = list_classes(folder)
    x, labels = read_images(files, cfg)
    where = f"data.path={str(folder)!r}"
    train = (x, np.asarray(labels))
    return to_dataset(train, None, cfg, seed, Origin(folder.name, where, "class folders"))
