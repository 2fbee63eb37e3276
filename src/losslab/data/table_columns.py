"""Which columns of a table are the label, which are features, and what kind each feature is."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from losslab.config.data import TableConfig
from losslab.data.dataset import DataError

SAMPLE = 10_000  # rows looked at first to tell a continuous column from a few-valued one


def text(value: object) -> str:
    """A label or category value as users type it: ``1.0`` and ``1`` both read ``1``."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _shown(columns: list[str], n: int = 12) -> str:
    more = f" and {len(columns) - n} more" if len(columns) > n else ""
    return f"{columns[:n]}{more}"


def require(df: pd.DataFrame, key: str, names: list[str], where: str) -> None:
    """Every column of ``names`` is in ``df``, or an error naming ``key`` and the columns."""
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise DataError(
            f"{key}: no column {_shown(missing)} in {where}; its columns are "
            f"{_shown(list(df.columns))}"
        )


@dataclass(frozen=True)
class Target:
    """The task a table's label column(s) give, and how a frame's rows become class ids."""

    task: str
    class_names: list[str]
    columns: list[str]
    values: list[str]  # the label's values as text, in class-id order (one-column labels)
    one_vs_rest: bool = False  # binary from data.positive against every other value

    def encode(self, df: pd.DataFrame, where: str) -> np.ndarray:
        if self.task == "multilabel":
            return df[self.columns].to_numpy(np.float32)
        codes, uniques = pd.factorize(df[self.columns[0]])
        ids = {v: i for i, v in enumerate(self.values)}
        unknown = sorted({text(u) for u in uniques} - set(ids))
        if unknown and not self.one_vs_rest:
            raise DataError(
                f"data.label={self.columns[0]}: {where} holds {_shown(unknown)}, not among "
                f"the training file's values {_shown(self.values)}"
            )
        by_unique = np.array([ids.get(text(u), 0) for u in uniques], dtype=np.int64)
        return by_unique[codes].astype(np.float32 if self.task == "binary" else np.int64)


def target(df: pd.DataFrame, cfg: TableConfig, where: str) -> Target:
    """Binary when the label has two values or ``positive`` is given (that value against the
    rest), else one class per value; multi-label for ``labels``."""
    columns = [cfg.label] if cfg.label is not None else list(cfg.labels or [])
    key = f"data.label={cfg.label}" if cfg.label is not None else f"data.labels={columns}"
    require(df, key, columns, where)
    missing = int(df[columns].isna().to_numpy().sum())
    if missing:
        raise DataError(f"{key}: {missing} rows of {where} have no label (NaN); fill or drop them")
    if cfg.labels is not None:
        return _multilabel(df, columns, key)
    codes, uniques = pd.factorize(df[cfg.label])
    counts = np.bincount(codes, minlength=len(uniques))
    values = [text(uniques[i]) for i in np.argsort(-counts, kind="stable")]  # most common first
    if len(values) < 2:
        raise DataError(
            f"{key}: every row of {where} is {values[0]!r}; a classifier needs two classes"
        )
    if cfg.positive is not None and cfg.positive not in values:
        raise DataError(
            f"data.positive={cfg.positive}: not a value of {cfg.label}; choose one of "
            f"{_shown(sorted(values))}"
        )
    if cfg.positive is None and len(values) > 2:
        names = sorted(values)
        return Target("multiclass", names, columns, names)
    positive = cfg.positive if cfg.positive is not None else values[-1]
    rest = [v for v in values if v != positive]
    if len(rest) > 1:
        return Target("binary", [f"not {positive}", positive], columns, ["", positive], True)
    return Target("binary", [rest[0], positive], columns, [rest[0], positive])


def _multilabel(df: pd.DataFrame, columns: list[str], key: str) -> Target:
    for column in columns:
        values = set(pd.unique(df[column]).tolist())
        if not values <= {0, 1}:  # True and False are 1 and 0
            shown = sorted(map(text, values))[:5]
            raise DataError(f"{key}: {column} holds {shown}; 0 or 1 expected")
    return Target("multilabel", columns, columns, [])


def feature_columns(df: pd.DataFrame, cfg: TableConfig, labels: list[str], where: str) -> list[str]:
    """``features``, else every column but the labels, ``drop``, the time and group columns."""
    for key, name in (("time_column", cfg.time_column), ("group_column", cfg.group_column)):
        if name is not None:
            require(df, f"data.{key}={name}", [name], where)
    if cfg.features is not None:
        require(df, "data.features", list(cfg.features), where)
        clash = [c for c in cfg.features if c in labels]
        if clash:
            raise DataError(f"data.features={list(cfg.features)}: {clash} is the label")
        return list(cfg.features)
    require(df, f"data.drop={list(cfg.drop)}", list(cfg.drop), where)
    skip = {*labels, *cfg.drop, cfg.time_column, cfg.group_column}
    columns = [c for c in df.columns if c not in skip]
    if not columns:
        raise DataError(f"data.drop={list(cfg.drop)}: no feature column is left")
    return columns


def kinds(df: pd.DataFrame, columns: list[str], cfg: TableConfig) -> tuple[list[str], list[str]]:
    """(numbers, categories): strings, booleans and integer-valued columns with at most
    ``category_levels`` values are categories. An id (a distinct integer or string in every
    row) or a string column with more than ``max_categories`` values is refused."""
    numbers, categories = [], []
    for name in columns:
        column = df[name]
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        if numeric and column.iloc[:SAMPLE].nunique() > cfg.category_levels:
            if pd.api.types.is_integer_dtype(column):
                _refuse_id(column, name, len(df))
            numbers.append(name)
            continue
        levels = column.nunique()
        if not numeric:
            _refuse_numbers_with_text(column, name, levels, cfg.max_categories)
            _refuse_id(column, name, len(df), levels)
            if levels > cfg.max_categories:
                raise DataError(
                    f"data.features: column {name!r} holds {levels} distinct strings in the "
                    "training rows; a category column may have at most "
                    f"data.max_categories={cfg.max_categories}: drop it (data.drop=[{name}]), "
                    "raise data.max_categories, or use data=text_table for free text"
                )
        integral = numeric and bool(np.all(np.mod(column.dropna().unique(), 1) == 0))
        many = numeric and (levels > cfg.category_levels or not integral)
        (numbers if many else categories).append(name)
    return numbers, categories


def check_finite(df: pd.DataFrame, columns: list[str], where: str) -> None:
    """No number column holds inf (a blank is imputed; inf would be standardised to NaN)."""
    for name in columns:
        column = df[name]
        if pd.api.types.is_float_dtype(column):
            infinite = int(np.isinf(column.to_numpy(np.float64)).sum())
            if infinite:
                raise DataError(
                    f"data.features: column {name!r} of {where} holds inf in {infinite} rows; "
                    "numbers must be finite (a blank value is imputed)"
                )


def _refuse_numbers_with_text(column: pd.Series, name: str, levels: int, most: int) -> None:
    """A column of many values that are nearly all numbers: a typo, not a category."""
    if levels <= most:
        return
    values = pd.Series(column.dropna().unique()[:SAMPLE])
    parsed = pd.to_numeric(values, errors="coerce")
    if parsed.notna().mean() >= 0.9:
        bad = values[parsed.isna()].tolist()[:3]
        shown = f" {bad}" if bad else ""
        raise DataError(
            f"data.features: column {name!r} holds numbers and text{shown}; fix those values "
            "or leave them blank (a blank is imputed)"
        )


def _refuse_id(column: pd.Series, name: str, n: int, levels: int | None = None) -> None:
    levels = column.nunique() if levels is None else levels
    if n > 20 and levels == n:
        raise DataError(
            f"data.features: column {name!r} holds a different value in every row (an id?); "
            f"a model cannot learn from it: drop it with data.drop=[{name}]"
        )
