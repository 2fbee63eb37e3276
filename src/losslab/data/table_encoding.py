"""How a table's columns become the model's inputs: parameters fitted on the training rows,
then any rows (training, validation, test) encoded with them into one float32 matrix.

The encoding is scikit-learn's ``ColumnTransformer`` of ``SimpleImputer(strategy="mean",
add_indicator=True)`` and ``StandardScaler`` on numbers, ``OneHotEncoder(handle_unknown=
"ignore")`` on categories: a missing number becomes the training mean (0 once standardised)
beside a missing-value indicator, a category unseen in training encodes as all zeros, a
missing category is a category of its own. The tests check this module against that
transformer; it is not used itself because it takes twice the CPU time on a million rows
(2.9 s against 1.4 s: masked-array means, a Python pass per string value, float64 blocks
stacked, then cast to float32), and because the logged model must apply the parameters
without scikit-learn anyway (:mod:`losslab.tracking.raw_rows_model`, which gives the same
inputs to the last bit). The parameters are plain JSON, in the format that model reads.
Keras' ``FeatureSpace`` would encode inside the model, but it adapts and encodes through
``tf.data`` row batches (slow on a million rows, TensorFlow only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LOG_OFFSET = 0.001  # log(x + 0.001): a zero amount stays finite
CHUNK = 131_072  # rows encoded at a time: float64 temporaries stay a few MiB per column


def fit(
    train: pd.DataFrame,
    numbers: list[str],
    categories: list[str],
    log_columns: list[str],
    clip: float | None,
) -> dict:
    """The encoding's parameters, from the training rows only."""
    spec: dict = {"numbers": {"columns": []}, "categories": []}
    if numbers:
        spec["numbers"] = _fit_numbers(train, numbers, [numbers.index(c) for c in log_columns])
        spec["numbers"]["clip"] = clip
    spec["categories"] = [[name, _values(train[name])] for name in categories]
    return spec


def _raw_numbers(frame: pd.DataFrame, spec: dict) -> np.ndarray:
    """The number columns as float64, logged where asked."""
    x = frame[spec["columns"]].to_numpy(np.float64, na_value=np.nan, copy=True)
    logged = spec["log"]
    x[:, logged] = np.log(x[:, logged] + spec["log_offset"])
    return x


def _fit_numbers(train: pd.DataFrame, columns: list[str], log: list[int]) -> dict:
    """Means to impute, the columns that get an indicator (those missing in training), and
    the standardisation of both; a constant column keeps scale 1 (scikit-learn's bound)."""
    spec = {"columns": columns, "log": log, "log_offset": LOG_OFFSET}
    x = _raw_numbers(train, spec)
    missing = np.isnan(x)
    seen = len(x) - missing.sum(axis=0)
    fill = np.where(seen > 0, np.nansum(x, axis=0) / np.maximum(seen, 1), 0.0)
    indicators = np.flatnonzero(missing.any(axis=0))
    both = np.hstack([np.where(missing, fill, x), missing[:, indicators]])
    mean, var = both.mean(axis=0), both.var(axis=0)
    eps = np.finfo(np.float64).eps
    constant = var <= len(x) * eps * var + (len(x) * mean * eps) ** 2
    scale = np.where(constant, 1.0, np.sqrt(var))
    return {
        **spec,
        "fill": fill.tolist(),
        "indicators": indicators.tolist(),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
    }


def _values(column: pd.Series) -> list:
    """The training values of a category column, sorted; None last for a missing value."""
    values = sorted(pd.Series(column.dropna().unique()).tolist())
    return values + [None] if column.isna().any() else values


def width(spec: dict) -> int:
    """How many inputs the encoding gives: numbers, their indicators, one per category."""
    numbers = spec["numbers"]
    n = len(numbers["columns"]) + len(numbers.get("indicators", []))
    return n + sum(len(values) for _, values in spec["categories"])


def encode(frame: pd.DataFrame, spec: dict) -> np.ndarray:
    """The rows of ``frame`` as the model's float32 inputs, written once into one matrix."""
    out = np.empty((len(frame), width(spec)), np.float32)
    start = 0
    if spec["numbers"]["columns"]:
        start = len(spec["numbers"]["mean"])
        for first in range(0, len(frame), CHUNK):
            rows = slice(first, first + CHUNK)
            _standardised(frame.iloc[rows], spec["numbers"], out[rows, :start])
    out[:, start:] = 0.0
    for name, values in spec["categories"]:
        _one_hot(frame[name], values, out[:, start : start + len(values)])
        start += len(values)
    return out


def _standardised(frame: pd.DataFrame, spec: dict, out: np.ndarray) -> None:
    """Imputed, indicators beside them, standardised and clipped, in float64 (the steps of
    the logged model's ``numbers``, value for value, so both round alike), into ``out``."""
    x = _raw_numbers(frame, spec)
    missing = np.isnan(x)
    x = np.where(missing, np.asarray(spec["fill"], np.float64), x)
    mean, scale, n = np.asarray(spec["mean"]), np.asarray(spec["scale"]), x.shape[1]
    blocks = ((x, slice(0, n)), (missing[:, spec["indicators"]].astype(np.float64), slice(n, None)))
    for values, part in blocks:
        z = (values - mean[part]) / scale[part]
        out[:, part] = z if spec["clip"] is None else np.clip(z, -spec["clip"], spec["clip"])


def _one_hot(column: pd.Series, values: list, out: np.ndarray) -> None:
    """One column of ``out`` per training value; an unseen value leaves its row zero. The
    column's distinct values are looked up, not its rows (strings stay in Arrow)."""
    codes, distinct = pd.factorize(column)  # a missing value: -1
    known = pd.Index([v for v in values if v is not None]).get_indexer(distinct)
    position = np.append(known, -1)[codes]
    rows = np.flatnonzero(position >= 0)
    out[rows, position[rows]] = 1.0
    if None in values:
        out[codes == -1, values.index(None)] = 1.0
