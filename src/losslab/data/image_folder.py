"""A folder of images, one sub-folder per class, as Keras' ``image_dataset_from_directory``
lays it out and lists it (sorted class folders, image files at any depth below each).

Files are decoded as ``image_dataset_from_directory`` decodes them, in parallel, but from
this module's own listing rather than that function's stream: a file that does not decode
must be refused by its path before training, which the stream cannot name, and images
keep their own size when ``data.image_size`` is not given. Every image is needed in memory
anyway, for the stratified splits and oversampling.
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
    hidden folder (``.ipynb_checkpoints``) is not a class."""
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


CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}


def decoder(cfg: ImageFolderConfig):
    """A path to (h, w, c) float32 pixels in [0, 255], decoded and resized as
    ``image_dataset_from_directory`` does (``tf.image.decode_image``, bilinear resize)."""
    import tensorflow as tf

    channels, size = CHANNELS[str(cfg.color_mode)], cfg.image_size

    def decode(path):
        data = tf.io.read_file(path)
        image = tf.image.decode_image(data, channels=channels, expand_animations=False)
        if size is not None:
            return tf.image.resize(image, tuple(size), method="bilinear")
        return tf.cast(image, tf.float32)

    return decode


def decoded_shape(path: Path, decode) -> tuple[int, ...] | None:
    """One image's (h, w, c), or None when it does not decode. Asked through ``tf.data``,
    whose ``ignore_errors`` drops a failure quietly: an eager decode would log it to the
    terminal from TensorFlow's C++ runtime, beside the one line that names the file."""
    import tensorflow as tf

    def shape_of(path):
        return tf.shape(decode(path))

    one = tf.data.Dataset.from_tensors(str(path)).map(shape_of).ignore_errors()
    shapes = [tuple(int(d) for d in s.numpy()) for s in one]
    return shapes[0] if shapes else None


def _unfit(path: Path, shape: tuple | None, first: Path, first_shape: tuple) -> DataError:
    if shape is None:
        return DataError(
            f"data.path: {path} does not decode as an image (a BMP, GIF, JPEG or PNG); "
            "remove it or replace it with a readable image"
        )
    return DataError(
        f"data.image_size=null: {path} is {shape[:2]} but {first} is {first_shape[:2]}; "
        "give data.image_size=[height,width] to resize them all"
    )


def read_images(files: dict[str, list[Path]], cfg: ImageFolderConfig) -> tuple[np.ndarray, list]:
    """Every image, scaled to [0, 1], and its class folder's name, decoded in parallel by
    ``tf.data``; a file that does not decode, or differs in size from the first, is named."""
    import tensorflow as tf

    paths = [path for found in files.values() for path in found]
    labels = [name for name, found in files.items() for _ in found]
    decode = decoder(cfg)
    shape = decoded_shape(paths[0], decode)
    if shape is None:
        raise _unfit(paths[0], None, paths[0], ())

    def decoded(index, path):
        return index, tf.ensure_shape(decode(path), shape)

    stream = (
        tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), [str(p) for p in paths]))
        .map(decoded, tf.data.AUTOTUNE, deterministic=True)
        .ignore_errors()  # quietly: the files missing below are named one by one
        .batch(256)
        .prefetch(tf.data.AUTOTUNE)
    )
    batches = [(index.numpy(), images.numpy()) for index, images in stream]
    read = np.concatenate([index for index, _ in batches])
    if len(read) != len(paths):
        bad = paths[int(np.setdiff1d(np.arange(len(paths)), read)[0])]
        raise _unfit(bad, decoded_shape(bad, decode), paths[0], shape)
    images = np.concatenate([images for _, images in batches])
    return (images / 255.0).astype(np.float32), labels


def load_image_folder(cfg: ImageFolderConfig, seed: int, root: Path) -> Dataset:
    """Two classes: binary with ``positive`` (default: the smaller folder) as 1; more: one
    class id per folder in sorted order. Pixels scaled to [0, 1], images kept as images."""
    folder = resolve(cfg.path, root, "a folder with one sub-folder of images per class")  # type: ignore[arg-type]
    files = list_classes(folder)
    x, labels = read_images(files, cfg)
    where = f"data.path={str(folder)!r}"
    train = (x, np.asarray(labels))
    return to_dataset(train, None, cfg, seed, Origin(folder.name, where, "class folders"))
