"""The MLflow model that takes raw rows: a pandas DataFrame with the table's own columns (JSON
records over ``mlflow models serve``) in, the Keras model's probabilities out.

MLflow logs this file as the model's code ("models from code"), so loading the model runs no
pickle: the Keras model loads with ``safe_mode=True`` and the encoding from plain JSON
(:data:`ENCODING`), applied here with numpy and pandas. The file imports no losslab module and
no scikit-learn, so the logged model needs neither.

The encoding, as a source writes it (``losslab.data.table_encoding.fit``, on the training
rows), in output column order:
``numbers``: columns, ``log`` (positions, in ``columns``, of those taken as log(x +
``log_offset``) first), ``fill`` (the imputed value of each), ``indicators`` (positions of
those that get a missing-value indicator), ``mean`` and ``scale`` (over the numbers, then the
indicators), ``clip`` (null, or the bound of the standardised values); ``categories``:
``[column, values]`` pairs, ``null`` among the values standing for a missing one. A value
never seen in training encodes as all zeros.
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd

KERAS_MODEL = "keras_model"
ENCODING = "encoding"


def numbers(frame: pd.DataFrame, spec: dict) -> np.ndarray:
    """Logged where asked, imputed, missing-value indicators beside them, standardised,
    clipped where asked."""
    x = frame[spec["columns"]].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64, copy=True)
    logged = spec["log"]
    x[:, logged] = np.log(x[:, logged] + spec["log_offset"])
    missing = np.isnan(x)
    x = np.where(missing, np.asarray(spec["fill"], np.float64), x)
    both = np.hstack([x, missing[:, spec["indicators"]].astype(np.float64)])
    z = (both - np.asarray(spec["mean"])) / np.asarray(spec["scale"])
    return z if spec["clip"] is None else np.clip(z, -spec["clip"], spec["clip"])


def one_hot(column: pd.Series, values: list) -> np.ndarray:
    """One column per training value; a missing value is one of them when training had one."""
    out = np.zeros((len(column), len(values)), np.float32)
    known = [v for v in values if v is not None]
    codes = pd.Index(known).get_indexer(column)
    rows = np.flatnonzero(codes >= 0)
    out[rows, codes[rows]] = 1.0
    if None in values:
        out[column.isna().to_numpy(), values.index(None)] = 1.0
    return out


def encode(frame: pd.DataFrame, encoding: dict) -> np.ndarray:
    parts = []
    if encoding["numbers"]["columns"]:
        parts.append(numbers(frame, encoding["numbers"]))
    parts += [one_hot(frame[name], values) for name, values in encoding["categories"]]
    return np.hstack(parts).astype(np.float32)


class RawRowsModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        import keras

        self.model = keras.saving.load_model(
            context.artifacts[KERAS_MODEL], compile=False, safe_mode=True
        )
        with open(context.artifacts[ENCODING]) as f:
            self.encoding = json.load(f)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        x = encode(pd.DataFrame(model_input), self.encoding)
        return np.asarray(self.model(x, training=False), dtype=np.float64)


mlflow.models.set_model(RawRowsModel())
