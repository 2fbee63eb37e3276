"""A table's encoding: the one scikit-learn's ColumnTransformer gives, fitted on the training
rows, and the one the logged model applies to raw rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from losslab.data import table_encoding
from losslab.tracking import raw_rows_model


def reference(train: pd.DataFrame, test: pd.DataFrame, numbers, categories, log, clip):
    """scikit-learn's transform of ``test``, fitted on ``train``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if numbers:
        impute = SimpleImputer(strategy="mean", add_indicator=True, keep_empty_features=True)
        parts.append(("numbers", make_pipeline(impute, StandardScaler()), numbers))
    if categories:
        onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        parts.append(("categories", onehot, categories))
    transform = ColumnTransformer(parts, sparse_threshold=0.0)
    logged = [f.assign(**{c: np.log(f[c] + 0.001) for c in log}) for f in (train, test)]
    x = transform.fit(logged[0]).transform(logged[1])
    if clip is not None and numbers:
        width = transform.output_indices_["numbers"].stop
        x[:, :width] = np.clip(x[:, :width], -clip, clip)
    return x


number = st.one_of(st.none(), st.integers(-10_000, 10_000).map(lambda i: i / 100))
PLANS = ["basic", "pro", None, "new"]  # "new": in test rows only
amount = st.one_of(st.none(), st.integers(0, 100_000).map(lambda i: i / 100))


@st.composite
def tables(draw):
    """Training and test rows: numbers with missing values (some columns constant or all
    missing), string and integer categories with missing values and values unseen in
    training."""
    n_train, n_test = draw(st.integers(2, 60)), draw(st.integers(1, 30))
    n = n_train + n_test
    columns = {
        "x": draw(st.lists(number, min_size=n, max_size=n)),
        "amount": draw(st.lists(amount, min_size=n, max_size=n)),
        "flat": [draw(st.sampled_from([None, 3.0]))] * n,
        "plan": draw(st.lists(st.sampled_from(PLANS), min_size=n, max_size=n)),
        "calls": draw(st.lists(st.sampled_from([0, 1, 2, 7]), min_size=n, max_size=n)),
    }
    df = pd.DataFrame(columns).astype({"x": float, "amount": float, "flat": float})
    train, test = df.iloc[:n_train], df.iloc[n_train:]
    train = train.assign(plan=train["plan"].replace("new", "basic"))
    return train, test


@settings(max_examples=40, deadline=None)
@given(
    data=tables(),
    numbers=st.sampled_from([["x", "amount", "flat"], ["amount"], []]),
    categories=st.sampled_from([["plan", "calls"], ["plan"], []]),
    clip=st.sampled_from([None, 1.5]),
)
def test_the_encoding_is_scikit_learns_and_the_logged_models(data, numbers, categories, clip):
    train, test = data
    if not numbers and not categories:
        categories = ["calls"]
    log = ["amount"] if "amount" in numbers else []
    spec = table_encoding.fit(train, numbers, categories, log, clip)
    x = table_encoding.encode(test, spec)
    assert x.dtype == np.float32
    expected = reference(train, test, numbers, categories, log, clip)
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)
    served = raw_rows_model.encode(test, json.loads(json.dumps(spec)))
    np.testing.assert_array_equal(x, served)


def test_a_million_rows_encode_in_chunks_as_one():
    """Rows encoded a chunk at a time give what one pass gives."""
    rng = np.random.default_rng(0)
    n = table_encoding.CHUNK + 7
    df = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b"], n)})
    df.loc[rng.random(n) < 0.1, "x"] = np.nan
    spec = table_encoding.fit(df, ["x"], ["c"], [], None)
    np.testing.assert_array_equal(table_encoding.encode(df, spec), raw_rows_model.encode(df, spec))
