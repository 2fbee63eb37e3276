"""Read an ``.npz`` whose object arrays (Keras' imdb.npz: lists of word ids) would need pickle,
without letting the file run code.

``np.load(allow_pickle=True)`` unpickles whatever the file names, so a crafted file runs any
function it likes; ``allow_pickle=False`` refuses Keras' own file. Object arrays here go
through an unpickler that only rebuilds NumPy arrays, dtypes and scalars (and the lists and
ints inside them, which pickle writes without naming a class); any other name is refused.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from losslab.data.dataset import DataError

NUMPY_MODULES = {"numpy", "numpy.core.multiarray", "numpy._core.multiarray"}
NUMPY_NAMES = {"_reconstruct", "ndarray", "dtype", "scalar"}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module in NUMPY_MODULES and name in NUMPY_NAMES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a data file")


def _read_header(f: IO[bytes]) -> np.dtype:
    version = np.lib.format.read_magic(f)
    read = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    if version not in read:
        raise ValueError(f"npy format version {version} is not supported")
    _, _, dtype = read[version](f)
    return dtype


def _read_member(zf: zipfile.ZipFile, member: str) -> np.ndarray:
    with zf.open(member) as f:
        if not _read_header(f).hasobject:
            f.close()
            with zf.open(member) as plain:
                return np.lib.format.read_array(plain, allow_pickle=False)
        array = _ArrayUnpickler(f).load()
    if not isinstance(array, np.ndarray):
        raise pickle.UnpicklingError(f"{member} holds a {type(array).__name__}, not an array")
    return array


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of ``path`` by name; a file that is no npz, or that asks pickle for
    anything but arrays, raises :class:`DataError` naming the file and the member."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{path}: not an npz file ({err})") from err
    arrays = {}
    with zf:
        for member in zf.namelist():
            if not member.endswith(".npy"):
                continue
            try:
                arrays[member[: -len(".npy")]] = _read_member(zf, member)
            except (pickle.UnpicklingError, ValueError, EOFError) as err:
                raise DataError(f"{path}: {member} refused: {err}") from err
    return arrays
