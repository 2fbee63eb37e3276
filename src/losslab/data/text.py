"""Texts as multi-hot bags of words: IMDB reviews (Keras' word-index sequences), and any table
of texts and labels (``data=text_table``, or ``data=imdb data.path=<table>``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from losslab.config.data import ImdbConfig, TextTableConfig
from losslab.data.arrays import resolve
from losslab.data.dataset import DataError, Dataset
from losslab.data.labels import read_labels
from losslab.data.npz import load_npz
from losslab.data.splits import split, subsample, validation_split

SEQUENCES = (
    "word-index sequences (an object array of integer lists, as Keras' imdb.npz holds, or an "
    "integer array); numeric features go to data=arrays"
)
PARQUET = (".parquet", ".pq")
IMDB_NAMES = ["negative", "positive"]  # Keras' labels 0 and 1
VECTORIZE_BATCH = 4096  # texts per call: bounds the dense (batch, num_words) block in memory


def multi_hot(sequences, num_words: int, where: str = "sequences") -> np.ndarray:
    """One row per sequence with 1 at every word index below ``num_words``."""
    out = np.zeros((len(sequences), num_words), dtype=np.float32)
    for row, seq in enumerate(sequences):
        idx = np.asarray(seq)
        if idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0):
            raise DataError(
                f"{where}[{row}] holds {idx.dtype} values from {idx.min()}; {where} must hold "
                f"{SEQUENCES}"
            )
        idx = idx.astype(np.int64)
        out[row, idx[idx < num_words]] = 1.0
    return out


def _check_sequences(arrays: dict[str, np.ndarray], where: str) -> None:
    """Word-index arrays: integers, or objects (each row checked by :func:`multi_hot`)."""
    for name in ("x_train", "x_test"):
        kind = arrays[name].dtype.kind
        if kind not in "iuO":
            raise DataError(
                f"{where}: {name} has dtype {arrays[name].dtype}; data=imdb takes {SEQUENCES}"
            )


def _load_npz(path: Path, cfg: ImdbConfig, seed: int) -> Dataset:
    where = f"data.path={str(path)!r}"
    arrays = load_npz(path)  # Keras' own imdb.npz holds object arrays: no plain pickle
    missing = {"x_train", "y_train", "x_test", "y_test"} - set(arrays)
    if missing:
        raise DataError(f"{where} lacks arrays {sorted(missing)}")
    _check_sequences(arrays, where)
    coding = read_labels(arrays["y_train"], cfg.positive, f"{where}: y_train")
    x = multi_hot(arrays["x_train"], cfg.num_words, f"{where}: x_train")
    y = coding.apply(arrays["y_train"], f"{where}: y_train")
    x_test = multi_hot(arrays["x_test"], cfg.num_words, f"{where}: x_test")
    y_test = coding.apply(arrays["y_test"], f"{where}: y_test")
    names = IMDB_NAMES if coding.values == (0, 1) else coding.class_names
    return _dataset((x, y), (x_test, y_test), cfg, seed, names)


def _dataset(train, test, cfg: ImdbConfig, seed: int, names: list[str]) -> Dataset:
    """IMDB's training arrays subsampled and split for validation; its test arrays as given."""
    x, y = subsample(*train, cfg.max_train, seed)
    x_train, y_train, x_val, y_val = validation_split(x, y, cfg, seed)
    task = "binary" if len(names) == 2 else "multiclass"
    return Dataset("imdb", task, x_train, y_train, x_val, y_val, *test, class_names=names)


def read_table(path: Path, columns: dict[str, str | None]) -> pd.DataFrame:
    """``columns`` (option -> column) of a CSV (plain, .gz, .zip) or Parquet file."""
    where = f"data.path={str(path)!r}"
    parquet = path.suffix.lower() in PARQUET
    try:
        frame = pd.read_parquet(path) if parquet else pd.read_csv(path)
    except Exception as err:  # pandas and pyarrow name the row, column or byte
        text = str(err)[:200].encode("ascii", "backslashreplace").decode().replace("\n", " ")
        kind = "Parquet" if parquet else "CSV"
        raise DataError(f"{where}: not a readable {kind} ({text})") from err
    for option, column in columns.items():
        if column not in frame.columns:
            raise DataError(
                f"data.{option}={column}: no such column in {path.name}; its columns are "
                f"{[str(c) for c in frame.columns][:20]}"
            )
    if frame.empty:
        raise DataError(f"{where} holds a header and no rows")
    return frame


def vectorizer(texts: np.ndarray, num_words: int):
    """Keras' ``TextVectorization`` into ``num_words`` multi-hot slots (slot 0 for words
    outside the vocabulary), its vocabulary taken from ``texts`` only. The width is
    ``num_words`` even when the vocabulary is smaller, as the IMDB arrays' is."""
    import keras

    layer = keras.layers.TextVectorization(
        max_tokens=num_words, output_mode="multi_hot", pad_to_max_tokens=True
    )
    layer.adapt(texts, batch_size=VECTORIZE_BATCH)
    return layer


def vectorize(layer, texts: np.ndarray) -> np.ndarray:
    import keras

    parts = [
        keras.ops.convert_to_numpy(layer(texts[i : i + VECTORIZE_BATCH]))
        for i in range(0, len(texts), VECTORIZE_BATCH)
    ]
    return np.concatenate(parts).astype(np.float32)


def bag_of_words(name: str, train, test, cfg: TextTableConfig, seed: int, classes) -> Dataset:
    """Texts and their coded labels as multi-hot rows whose vocabulary is the training
    split's; the test split a stratified ``test_fraction`` when ``test`` is None."""
    texts, y = train
    if test is None:
        texts, y, *test = split(texts, y, cfg.test_fraction, seed)
    texts_test, y_test = test
    texts, y = subsample(texts, y, cfg.max_train, seed)
    texts_train, y_train, texts_val, y_val = validation_split(texts, y, cfg, seed)
    layer = vectorizer(texts_train, cfg.num_words)
    x_train, x_val, x_test = (vectorize(layer, t) for t in (texts_train, texts_val, texts_test))
    task = "binary" if len(classes) == 2 else "multiclass"
    return Dataset(name, task, x_train, y_train, x_val, y_val, x_test, y_test, list(classes))


def load_text_table(cfg: TextTableConfig, seed: int, root: Path, name: str = "") -> Dataset:
    """The ``text`` column as a bag of words, the ``label`` column read as its task; test
    and validation are stratified fractions. An empty text cell is an empty bag."""
    path = resolve(cfg.path, root, "a CSV or Parquet file of texts and labels")  # type: ignore[arg-type]
    frame = read_table(path, {"text": cfg.text, "label": cfg.label})
    where = f"data.label={cfg.label}"
    coding = read_labels(frame[cfg.label].to_numpy(), cfg.positive, where)
    y = coding.apply(frame[cfg.label].to_numpy(), where)
    texts = frame[cfg.text].fillna("").astype(str).to_numpy(object)
    return bag_of_words(name or path.stem, (texts, y), None, cfg, seed, coding.class_names)


def read_review_folder(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The training and test reviews of Stanford's ``aclImdb`` folder (``train/`` and
    ``test/``, each with ``neg/`` and ``pos/`` of ``.txt`` files; ``train/unsup/`` unused)."""
    parts = []
    for part in ("train", "test"):
        texts, labels = [], []
        for label, name in enumerate(("neg", "pos")):
            files = sorted((folder / part / name).glob("*.txt"))
            if not files:
                raise DataError(
                    f"data.path={str(folder)!r}: {part}/{name} holds no .txt reviews; a folder "
                    "for data=imdb is laid out as aclImdb: train/ and test/, each with neg/ "
                    "and pos/"
                )
            texts += [f.read_text(encoding="utf-8", errors="replace") for f in files]
            labels += [label] * len(files)
        parts.append((np.asarray(texts, dtype=object), np.asarray(labels, dtype=np.float32)))
    return parts


def load_imdb(cfg: ImdbConfig, seed: int, root: Path) -> Dataset:
    """``keras.datasets.imdb`` without ``path``; with it, an npz in Keras' layout, Stanford's
    ``aclImdb`` folder, or a review table (``text`` and ``label`` columns)."""
    if cfg.path is None:
        import keras

        (x_tr, y_tr), (x_te, y_te) = keras.datasets.imdb.load_data(num_words=cfg.num_words)
        x = multi_hot(x_tr, cfg.num_words)
        x_test = multi_hot(x_te, cfg.num_words)
        y, y_test = (np.asarray(a, dtype=np.float32) for a in (y_tr, y_te))
        return _dataset((x, y), (x_test, y_test), cfg, seed, IMDB_NAMES)
    path = resolve(cfg.path, root, "an imdb.npz, the aclImdb folder or a table of reviews")
    if path.is_dir():
        train, test = read_review_folder(path)
        return bag_of_words("imdb", train, test, cfg, seed, IMDB_NAMES)
    if path.suffix.lower() == ".npz":
        return _load_npz(path, cfg, seed)
    return load_text_table(cfg, seed, root, name="imdb")
