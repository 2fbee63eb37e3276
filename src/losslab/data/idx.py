"""Read the published MNIST-format IDX files (plain or gzip) from a folder.

Keras 3's ``mnist.load_data`` takes no path and checks a fixed hash, and its Fashion-MNIST
loader only reads from its own cache, so offline copies (``../shared/data/mnist``, Debian's
``dataset-fashion-mnist``) are read here directly; the format is a few header integers.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from losslab.data.dataset import DataError

FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    """One IDX file as a uint8 array of the shape its header gives."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path} holds {data.size} values; its header promises {dims}")
    return data.reshape(dims)


def load_folder(folder: str | Path) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """``((x_train, y_train), (x_test, y_test))`` like ``keras.datasets.mnist.load_data``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data.source_dir={str(folder)!r} is not a folder")
    arrays = {}
    for key, stem in FILES.items():
        candidates = [folder / f"{stem}.gz", folder / stem]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise DataError(
                f"{folder} has no {stem}[.gz]; it needs the four IDX files {list(FILES.values())}"
            )
        arrays[key] = read_idx(found)
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.ndim != 3 or len(x) != len(y):
            raise DataError(
                f"{folder}: {part} images have shape {x.shape} for {len(y)} labels; "
                "(n, rows, cols) images with one label each expected"
            )
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
