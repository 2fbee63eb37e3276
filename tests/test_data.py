"""Every data source: shapes, balance, and no sample in two splits."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from losslab.config import to_objects
from losslab.config.data import SCHEMAS, DataConfig, DataSource
from losslab.data import DataError, load
from tests.helpers import (
    CREDITCARD,
    FASHION_DIR,
    MNIST_DIR,
    compose,
    needs_creditcard,
    needs_fashion,
    needs_mnist,
)


def data_config(source: str, **settings) -> DataConfig:
    """The schema of ``source`` with ``settings``, as the ``data`` group would compose it."""
    return SCHEMAS[DataSource(source)](source=DataSource(source), **settings)


def rows(x: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in np.ascontiguousarray(x)}


def assert_no_leakage(ds) -> None:
    train, val, test = rows(ds.x_train), rows(ds.x_val), rows(ds.x_test)
    assert not train & val and not train & test and not val & test


def test_digits_default_is_imbalanced_with_balanced_test():
    ds = load(
        data_config(source="digits_pair", n_minority=20, test_per_class=60, val_fraction=0.25),
        seed=0,
    )
    assert ds.task == "binary" and ds.input_shape == (64,)
    assert int(ds.y_train.sum() + ds.y_val.sum()) == 20
    assert ds.y_val.sum() == 10  # a quarter would be 5: raised to the floor, min_val_minority
    assert ds.y_test.sum() == 60 and (ds.y_test == 0).sum() == 60
    assert ds.class_names == ["9", "4"]
    assert_no_leakage(ds)


def test_digits_split_is_seeded():
    cfg = data_config(source="digits_pair", n_minority=20, test_per_class=60)
    a, b, c = load(cfg, seed=1), load(cfg, seed=1), load(cfg, seed=2)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@needs_mnist
def test_mnist_9v4_reference_protocol():
    ds = load(
        data_config(
            source="image_pair",
            dataset="mnist",
            source_dir=str(MNIST_DIR),
            n_minority=100,
            val_fraction=0.1,
        ),
        seed=0,
    )
    assert ds.input_shape == (784,)
    assert len(ds.y_train) + len(ds.y_val) == 5949 + 100
    assert ds.y_train.sum() + ds.y_val.sum() == 100
    assert (ds.y_test == 0).sum() == 1009 and (ds.y_test == 1).sum() == 982
    assert ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    assert_no_leakage(ds)


@needs_mnist
def test_mnist_tail_validation_reproduces_the_all_fours_quirk():
    ds = load(
        data_config(
            source="image_pair",
            dataset="mnist",
            source_dir=str(MNIST_DIR),
            n_minority=100,
            val_fraction=0.01,
            val_split="tail",
        ),
        seed=0,
    )
    assert len(ds.y_val) == 60 and ds.y_val.min() == 1.0  # every validation image is a 4
    assert ds.y_train.sum() == 40


@needs_mnist
def test_too_many_minority_samples_is_a_clear_error():
    with pytest.raises(DataError, match="n_minority=9000 but the training split has only 5842"):
        load(data_config(source="image_pair", source_dir=str(MNIST_DIR), n_minority=9000), 0)


@needs_fashion
def test_fashion_mnist_pair_and_classes_from_debian_package():
    pair = load(
        data_config(
            source="image_pair",
            dataset="fashion_mnist",
            source_dir=str(FASHION_DIR),
            n_minority=100,
        ),
        seed=0,
    )
    assert pair.class_names == ["ankle boot", "coat"]
    assert pair.y_train.sum() + pair.y_val.sum() == 100
    assert len(pair.y_test) == 2000
    classes = load(
        data_config(
            source="image_classes",
            dataset="fashion_mnist",
            source_dir=str(FASHION_DIR),
            max_train=2000,
        ),
        seed=0,
    )
    assert classes.task == "multiclass" and classes.n_outputs == 10
    assert len(classes.y_train) + len(classes.y_val) == 2000
    assert np.bincount(classes.y_train).min() >= 150  # stratified subsample
    assert len(classes.y_test) == 10000


@needs_mnist
def test_image_folder_with_wrong_shape_is_rejected(tmp_path):
    for name in (
        "train-labels-idx1-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
    ):
        shutil.copy(MNIST_DIR / name, tmp_path / name)
    images = np.zeros((60000, 14, 14), dtype=np.uint8)
    header = bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in images.shape)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(header + images.tobytes())
    with pytest.raises(DataError, match=r"\(14, 14\); 28x28 images expected"):
        load(data_config(source="image_pair", source_dir=str(tmp_path)), seed=0)


@needs_creditcard
def test_creditcard_real_file_subsample(tmp_path):
    overrides = ["data=creditcard", f"data.path={CREDITCARD}", "data.max_rows=40000"]
    conf = to_objects(compose(tmp_path, *overrides))
    ds = load(conf.data, seed=0)
    assert ds.input_shape == (29,)  # Time and Class dropped
    n = len(ds.y_train) + len(ds.y_val) + len(ds.y_test)
    assert n == 40000
    rates = [y.mean() for y in (ds.y_train, ds.y_val, ds.y_test)]
    assert all(0.001 < r < 0.0025 for r in rates)  # stratified, ~0.17% each
    assert np.abs(ds.x_train.mean(axis=0)).max() < 0.1  # standardised on train
    assert ds.x_train.max() <= 5.0 and ds.x_test.min() >= -5.0  # clipped


def test_synthetic_fraud_has_the_fraud_balance():
    ds = load(data_config(source="synthetic_fraud", n_samples=30000), seed=0)
    total = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    assert abs(total.mean() - 0.0017) < 0.0005
    assert min(ds.y_train.sum(), ds.y_val.sum(), ds.y_test.sum()) >= 5
    assert_no_leakage(ds)


def test_imdb_npz_becomes_multi_hot(tmp_path):
    rng = np.random.default_rng(0)
    seqs = np.empty(200, dtype=object)
    for i in range(200):
        seqs[i] = list(rng.integers(1, 300, size=rng.integers(5, 40)))
    labels = rng.integers(0, 2, size=200)
    np.savez(
        tmp_path / "imdb.npz",
        x_train=seqs[:150],
        y_train=labels[:150],
        x_test=seqs[150:],
        y_test=labels[150:],
    )
    ds = load(
        data_config(
            source="imdb", path=str(tmp_path / "imdb.npz"), num_words=100, val_fraction=0.2
        ),
        seed=0,
    )
    assert ds.input_shape == (100,)
    assert set(np.unique(ds.x_train)) <= {0.0, 1.0}
    assert len(ds.y_train) == 120 and len(ds.y_val) == 30 and len(ds.y_test) == 50
    first = np.asarray(seqs[150])
    assert ds.x_test[0].sum() == len(np.unique(first[first < 100]))


def test_multilabel_has_few_ones_per_output():
    ds = load(data_config(source="multilabel", n_samples=3000), seed=0)
    assert ds.task == "multilabel" and ds.y_train.shape[1] == 12
    assert 0.05 <= ds.y_train.mean() <= 0.10
