"""``data=table``: the user's own table, split, encoded on its training rows, and ready to
travel with the logged model (the encoding: :mod:`losslab.data.table_encoding`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from losslab.config.data import TableConfig, TableSplit
from losslab.data import table_encoding, table_splits
from losslab.data.dataset import DataError, Dataset, RawInputs
from losslab.data.splits import subsample
from losslab.data.table_columns import (
    Target,
    check_finite,
    feature_columns,
    kinds,
    require,
    target,
)
from losslab.data.table_read import read_table

log = logging.getLogger(__name__)
EXAMPLE_ROWS = 5


def _rows(y: np.ndarray, df: pd.DataFrame, cfg: TableConfig, fraction: float, seed: int, part: str):
    """(kept, split off) row indices of ``df`` as ``cfg.split`` and ``cfg.group_column`` say."""
    need = cfg.min_val_minority if part == "validation" else 1
    if cfg.split == TableSplit.time:
        times = table_splits.time_values(df[cfg.time_column], cfg.time_column)
        return table_splits.time_rows(y, times, fraction, need, part)
    if cfg.group_column is not None:
        groups = df[cfg.group_column].to_numpy()
        return table_splits.group_rows(y, groups, fraction, seed, need, part)
    return table_splits.random_rows(y, fraction, seed, need, part)


def _split(df: pd.DataFrame, y: np.ndarray, cfg: TableConfig, seed: int, test: pd.DataFrame | None):
    """Training, validation and test frames with their labels."""
    if test is None:
        rest, out = _rows(y, df, cfg, cfg.test_fraction, seed, "test")
        test, y_test = df.iloc[out], y[out]
        df, y = df.iloc[rest], y[rest]
    else:
        y_test = None
    keep, val = _rows(y, df, cfg, cfg.val_fraction, seed, "validation")
    return (df.iloc[keep], y[keep]), (df.iloc[val], y[val]), (test, y_test)


def _encode(cfg: TableConfig, train, val, test, kinds_: tuple[list[str], list[str]]):
    """The encoding fitted on the training rows, and the three splits' float32 inputs."""
    numbers, categories = kinds_
    not_numbers = [c for c in cfg.log_columns if c not in numbers]
    if not_numbers:
        raise DataError(f"data.log_columns={list(cfg.log_columns)}: {not_numbers} not numeric")
    spec = table_encoding.fit(train, numbers, categories, list(cfg.log_columns), cfg.clip)
    return spec, [table_encoding.encode(part, spec) for part in (train, val, test)]


def _class_names(cfg: TableConfig, tgt: Target) -> list[str]:
    if cfg.class_names is None:
        return tgt.class_names
    if len(cfg.class_names) != len(tgt.class_names):
        raise DataError(
            f"data.class_names={list(cfg.class_names)}: the label gives "
            f"{len(tgt.class_names)} classes ({tgt.class_names}); give one name each"
        )
    return list(cfg.class_names)


def _check_test_file(test: pd.DataFrame, columns: list[str], tgt: Target, cfg: TableConfig):
    require(test, "data.test_path", [*columns, *tgt.columns], str(cfg.test_path))
    check_finite(test, columns, str(cfg.test_path))
    return tgt.encode(test, str(cfg.test_path))


def load_table(cfg: TableConfig, seed: int, root: Path) -> Dataset:
    """Read, label, split, check for a leaking feature, encode on the training rows."""
    from losslab.data.table_leaks import check_leaks

    path = Path(str(cfg.path))
    df = read_table(str(cfg.path), root, cfg.encoding)
    test_file = None
    if cfg.test_path:
        test_file = read_table(cfg.test_path, root, cfg.encoding, "data.test_path")
    tgt = target(df, cfg, str(path))
    names = _class_names(cfg, tgt)
    columns = feature_columns(df, cfg, tgt.columns, str(path))
    check_finite(df, columns, str(path))
    y = tgt.encode(df, str(path))
    if cfg.max_rows is not None and cfg.max_rows < len(df):
        keep, _ = subsample(np.arange(len(df)), y, cfg.max_rows, seed)
        df, y = df.iloc[np.sort(keep)], y[np.sort(keep)]
    y_test_file = _check_test_file(test_file, columns, tgt, cfg) if test_file is not None else None
    (train, y_train), (val, y_val), (test, y_test) = _split(df, y, cfg, seed, test_file)
    y_test = y_test_file if y_test is None else y_test
    numbers, categories = kinds(train, columns, cfg)
    check_leaks(train[columns], y_train, numbers, categories, cfg.allow_perfect_feature)
    encoding, (x_train, x_val, x_test) = _encode(cfg, train, val, test, (numbers, categories))
    log.info(
        "table %s: %d numeric, %d category columns -> %d inputs",
        path.name,
        len(numbers),
        len(categories),
        x_train.shape[1],
    )
    raw = RawInputs(encoding, train[columns].iloc[:EXAMPLE_ROWS], test[columns])
    return Dataset(
        path.stem.split(".")[0],
        tgt.task,
        x_train,
        y_train,
        x_val,
        y_val,
        x_test,
        y_test,
        class_names=names,
        raw=raw,
    )
