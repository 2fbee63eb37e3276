"""Generated tables for the own-data tests: a churn-like table with string categories,
missing values, a time column and customers with several rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

PLANS = ["basic", "plus", "pro"]
REGIONS = ["north", "south", "east", "west"]


def churn_table(n: int = 1500, positives: float = 0.06, seed: int = 0) -> pd.DataFrame:
    """``churned`` (yes/no) depends on usage, tenure and plan; ``usage`` and ``plan`` have
    missing values; ``day`` is a time column; ``customer`` repeats over rows."""
    rng = np.random.default_rng(seed)
    usage = rng.gamma(2.0, 10.0, n)
    tenure = rng.integers(1, 60, n)
    plan = rng.choice(PLANS, n)
    score = -0.08 * usage - 0.05 * tenure + (plan == "basic") * 1.5 + rng.normal(0, 1, n)
    churned = score >= np.quantile(score, 1 - positives)
    df = pd.DataFrame(
        {
            "customer": rng.integers(0, n // 3, n).astype(str),
            "day": rng.permutation(n),
            "usage": usage,
            "tenure": tenure,
            "plan": plan,
            "region": rng.choice(REGIONS, n),
            "support_calls": rng.poisson(1.0, n),
            "monthly_fee": rng.normal(40, 10, n).round(2),
            "churned": np.where(churned, "yes", "no"),
        }
    )
    df.loc[rng.random(n) < 0.05, "usage"] = np.nan
    df.loc[rng.random(n) < 0.05, "plan"] = np.nan
    return df


def write(df: pd.DataFrame, folder: Path, name: str = "churn.csv") -> Path:
    path = folder / name
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix == ".feather":
        df.to_feather(path)
    else:
        df.to_csv(path, index=False)
    return path
