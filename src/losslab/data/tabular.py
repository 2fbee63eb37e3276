"""Fraud-style tables: the Kaggle credit-card CSV and a synthetic stand-in of the same balance.

Both follow TensorFlow's imbalanced-data tutorial: stratified train/val/test, features
standardised with training statistics only and clipped to +-``clip``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

from losslab.config.data import CreditCardConfig, SyntheticFraudConfig
from losslab.data.dataset import DataError, Dataset
from losslab.data.splits import split, standardize, subsample, validation_split

CREDITCARD_COLUMNS = ["Time", *[f"V{i}" for i in range(1, 29)], "Amount", "Class"]
FEATURES = [c for c in CREDITCARD_COLUMNS if c not in ("Time", "Class")]
AMOUNT_EPS = 0.001


def _tabular(
    name: str, x: np.ndarray, y: np.ndarray, cfg: CreditCardConfig | SyntheticFraudConfig, seed: int
) -> Dataset:
    x_rest, y_rest, x_test, y_test = split(x, y, cfg.test_fraction, seed)
    x_train, y_train, x_val, y_val = validation_split(x_rest, y_rest, cfg, seed)
    x_train, x_val, x_test = standardize(x_train, x_val, x_test, clip=cfg.clip)
    return Dataset(
        name,
        "binary",
        x_train,
        y_train,
        x_val,
        y_val,
        x_test,
        y_test,
        class_names=["legit", "fraud"],
    )


def _check_header(path: Path) -> None:
    """The header holds each expected column once and nothing else: an extra column (a
    copy of the label, an id) would be trained on silently."""
    try:
        header = [str(c).strip() for c in pd.read_csv(path, nrows=1, header=None).iloc[0]]
    except Exception as err:
        raise DataError(f"{path}: not a readable CSV ({_printable(err)})") from err
    duplicated = sorted({c for c in header if header.count(c) > 1})
    unexpected = [c for c in header if c not in CREDITCARD_COLUMNS]
    missing = [c for c in CREDITCARD_COLUMNS if c not in header]
    for problem, columns in (
        ("duplicates columns", duplicated),
        ("has unexpected columns", unexpected),
        ("lacks columns", missing),
    ):
        if columns:
            raise DataError(f"{path} {problem} {columns}; expected exactly {CREDITCARD_COLUMNS}")


def _printable(err: BaseException, limit: int = 200) -> str:
    """An error about a binary file quotes its bytes; keep them off the terminal."""
    text = str(err)[:limit]
    return text.encode("ascii", "backslashreplace").decode().replace("\n", " ")


def read_creditcard(path: str | Path) -> pd.DataFrame:
    """The CSV (plain or compressed) with its columns and values checked."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise DataError(f"data.path={str(path)!r} {what}; give the credit-card CSV")
    _check_header(path)
    try:
        df = pd.read_csv(path, engine="pyarrow")
    except Exception as err:  # pyarrow names the bad row and column
        raise DataError(f"{path}: not a readable CSV ({_printable(err)})") from err
    if df.empty:
        raise DataError(f"{path} holds a header and no rows")
    non_numeric = [c for c in CREDITCARD_COLUMNS if not pd.api.types.is_numeric_dtype(df[c])]
    if non_numeric:
        raise DataError(f"{path}: columns {non_numeric} hold non-numeric values")
    values = df[CREDITCARD_COLUMNS].to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        columns = [c for c, hit in zip(CREDITCARD_COLUMNS, bad.any(axis=0), strict=True) if hit]
        raise DataError(
            f"{path}: {int(bad.sum())} NaN or inf values in columns {columns}; "
            "every value must be a finite number"
        )
    labels = set(np.unique(df["Class"]).tolist())
    if not labels <= {0, 1}:
        raise DataError(f"{path}: Class holds {sorted(labels - {0, 1})}; only 0 and 1 allowed")
    return df


def load_creditcard(cfg: CreditCardConfig, seed: int, root: Path) -> Dataset:
    """Drop Time, log(Amount); ``max_rows`` keeps a stratified subsample."""
    path = Path(cfg.path)  # type: ignore[arg-type]
    df = read_creditcard(path if path.is_absolute() else root / path)
    y = df["Class"].to_numpy(np.float32)
    x = df[FEATURES].copy()
    x["Amount"] = np.log(x["Amount"] + AMOUNT_EPS)
    x, y = subsample(x.to_numpy(np.float64), y, cfg.max_rows, seed)
    return _tabular("creditcard", x, y, cfg, seed)


def load_synthetic_fraud(cfg: SyntheticFraudConfig, seed: int) -> Dataset:
    """``make_classification`` with ``positive_fraction`` positives and no label noise."""
    x, y = make_classification(
        n_samples=cfg.n_samples,
        n_features=cfg.n_features,
        n_informative=max(2, cfg.n_features // 3),
        n_redundant=max(0, cfg.n_features // 6),
        weights=[1.0 - cfg.positive_fraction],
        flip_y=0.0,
        class_sep=cfg.class_sep,
        random_state=seed,
    )
    n_pos = int(y.sum())
    needed = int(np.ceil(3 / min(cfg.test_fraction, cfg.val_fraction)))
    if n_pos < needed:
        raise DataError(
            f"data.n_samples={cfg.n_samples} with data.positive_fraction="
            f"{cfg.positive_fraction} gives {n_pos} positives; at least {needed} are needed "
            "for every split to hold some"
        )
    return _tabular("synthetic_fraud", x, y.astype(np.float32), cfg, seed)
