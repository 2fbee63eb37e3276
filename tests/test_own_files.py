"""One's own data from a path or a loader, with no code in the package: a folder of images, a
text table, an .npz of arrays, a loader by import path; and each bad input refused in one
line before any run is recorded."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hydra.errors import ConfigCompositionException
from hypothesis import given, settings
from hypothesis import strategies as st

from losslab.config import ConfigError, to_objects
from losslab.config.data import SCHEMAS, DataSource
from losslab.data import DataError, load
from losslab.data.labels import read_labels
from losslab.train import train
from tests.helpers import assert_nothing_recorded, compose, run_cli
from tests.own_data import (
    FILLER,
    NEGATIVE_WORDS,
    POSITIVE_WORDS,
    digit_images,
    digits_folder,
    review_table,
)

# each test records into a new store of its own, copied (tests/helpers.py: new_store)
pytestmark = pytest.mark.usefixtures("mlflow_db")


def data_config(source: str, **settings):
    return SCHEMAS[DataSource(source)](source=DataSource(source), **settings)


def rows(x: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in np.ascontiguousarray(x)}


def all_splits(ds) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([ds.x_train, ds.x_val, ds.x_test]), np.concatenate(
        [ds.y_train, ds.y_val, ds.y_test]
    )


OPTIONS = {
    "image_folder": ("ImageFolderConfig", ["data.path=images"]),
    "text_table": ("TextTableConfig", ["data.path=t.csv", "data.text=a", "data.label=b"]),
    "arrays": ("ArraysConfig", ["data.path=a.npz"]),
    "custom": ("CustomDataConfig", ["data._target_=pkg.load"]),
}


@pytest.mark.parametrize("option", OPTIONS)
def test_each_option_is_bound_to_its_schema_and_needs_its_path(tmp_path, option):
    schema, required = OPTIONS[option]
    conf = to_objects(compose(tmp_path, f"data={option}", *required))
    assert type(conf.data).__name__ == schema
    with pytest.raises(ConfigCompositionException) as err:  # a key only another source reads
        compose(tmp_path, f"data={option}", "data.majority=1")
    assert f"Key 'majority' not in '{schema}'" in str(err.value.__cause__)
    key = required[0].partition("=")[0]
    with pytest.raises(ConfigError, match=f"{re.escape(key)} is missing; "):
        to_objects(compose(tmp_path, f"data={option}", *required[1:]))


# ------------------------------------------------------------------------------ image folder
def test_an_image_folder_is_read_as_its_images_with_the_smaller_folder_positive(tmp_path):
    folder = digits_folder(tmp_path, {9: 150, 3: 50})
    ds = load(data_config("image_folder", path=str(folder), color_mode="grayscale"), seed=0)
    assert ds.task == "binary" and ds.class_names == ["nine", "three"]
    assert ds.image_shape == (8, 8, 1) and ds.input_shape == (64,)
    x, y = all_splits(ds)
    assert len(x) == 200 and int(y.sum()) == 50
    assert not rows(ds.x_train) & rows(ds.x_test) and not rows(ds.x_val) & rows(ds.x_test)
    # every image is the PNG's own pixels, scaled to [0, 1], under its folder's label
    threes = rows((digit_images(3, 50).reshape(50, -1) / 255.0).astype(np.float32))
    assert rows(x[y == 1]) <= threes and not rows(x[y == 0]) & threes


def test_positive_names_the_folder_and_rgb_keeps_three_channels(tmp_path):
    folder = digits_folder(tmp_path, {9: 150, 3: 50})
    ds = load(data_config("image_folder", path=str(folder), positive="nine"), seed=0)
    assert ds.class_names == ["three", "nine"] and int(all_splits(ds)[1].sum()) == 150
    assert ds.image_shape == (8, 8, 3)


def test_three_folders_are_a_multiclass_task_and_image_size_resizes(tmp_path):
    folder = digits_folder(tmp_path, {9: 80, 3: 40, 4: 40})
    cfg = data_config("image_folder", path=str(folder), image_size=[16, 12], color_mode="grayscale")
    ds = load(cfg, seed=0)
    assert ds.task == "multiclass" and ds.class_names == ["four", "nine", "three"]
    assert ds.image_shape == (16, 12, 1) and ds.class_counts()["train"][0] >= 10


def test_an_image_folder_of_pngs_trains_a_cnn_with_augmented_oversampling(tmp_path):
    folder = digits_folder(tmp_path, {9: 150, 3: 50})
    result = train(
        compose(
            tmp_path,
            "data=image_folder",
            f"data.path={folder}",
            "data.color_mode=grayscale",
            "model=cnn",
            "imbalance=oversample_augment",
            "tracking=none",
        )
    )
    assert result.dataset.image_shape == (8, 8, 1)
    assert result.model.get_layer("image").output.shape[1:] == (8, 8, 1)
    assert 0.0 <= result.metrics["test_pr_auc"] <= 1.0


# -------------------------------------------------------------------------------- text table
def test_the_vocabulary_is_learnt_from_the_training_split_only(tmp_path):
    """Each review holds its sentiment word and a word of its own: a word seen only in
    validation or test must land in the out-of-vocabulary slot (0), never in one of its own."""
    path = tmp_path / "own.csv"
    labels = ["bad" if i % 5 == 0 else "good" for i in range(300)]
    texts = [f"{label} own{i}" for i, label in enumerate(labels)]
    path.write_text(
        "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in zip(texts, labels, strict=True))
    )
    cfg = data_config("text_table", path=str(path), text="text", label="label", num_words=1000)
    ds = load(cfg, seed=0)
    assert ds.task == "binary" and ds.class_names == ["good", "bad"]
    assert (ds.x_train[:, 0] == 0).all() and (ds.x_train.sum(axis=1) == 2).all()
    for x in (ds.x_val, ds.x_test):
        assert (x[:, 0] == 1).all() and (x.sum(axis=1) == 2).all()


def test_a_review_table_trains_and_parquet_reads_the_same(tmp_path):
    csv = review_table(tmp_path / "reviews.csv")
    parquet = review_table(tmp_path / "reviews.parquet")
    settings = {"text": "review", "label": "sentiment", "num_words": 50}
    from_csv = load(data_config("text_table", path=str(csv), **settings), seed=0)
    from_parquet = load(data_config("text_table", path=str(parquet), **settings), seed=0)
    assert from_csv.fingerprint() == from_parquet.fingerprint()
    assert from_csv.class_names == ["positive", "negative"]  # the rarer value
    result = train(
        compose(
            tmp_path,
            "data=text_table",
            f"data.path={csv}",
            "data.text=review",
            "data.label=sentiment",
            "model=mlp_imdb",
            "tracking=none",
        )
    )
    vocabulary = {*POSITIVE_WORDS, *NEGATIVE_WORDS, *FILLER}
    assert result.dataset.input_shape == (10000,)  # data.num_words, as IMDB's arrays
    x, _ = all_splits(result.dataset)
    assert x[:, 1 : len(vocabulary) + 1].any(axis=0).all() and not x[:, len(vocabulary) + 1 :].any()


def test_the_imdb_study_runs_on_a_review_table(tmp_path):
    """The L2 arm of the IMDB regularisation study, its model and optimiser, on a table."""
    csv = review_table(tmp_path / "reviews.csv")
    result = train(
        compose(
            tmp_path,
            "+experiment=imdb_regularization",
            "+variant=l2",
            "data=text_table",
            f"data.path={csv}",
            "data.text=review",
            "data.label=sentiment",
            "trainer.epochs=1",
            "tracking=none",
        )
    )
    assert result.dataset.name == "reviews" and result.dataset.input_shape == (10000,)
    dense = result.model.get_layer("dense_0")
    assert dense.units == 16 and dense.kernel_regularizer.get_config()["l2"] > 0


def test_imdb_reads_a_local_review_table(tmp_path):
    path = review_table(tmp_path / "imdb.csv", negative_every=2)  # balanced, as IMDB is
    ds = load(data_config("imdb", path=str(path), num_words=40), seed=0)
    assert ds.name == "imdb" and ds.input_shape == (40,)
    assert ds.class_names == ["negative", "positive"]  # on a tie, the later value


def test_imdb_refuses_an_npz_of_float_features(tmp_path):
    x = np.random.default_rng(0).normal(size=(100, 20))
    y = np.arange(100) % 2
    np.savez(tmp_path / "features.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    with pytest.raises(DataError, match=r"x_train has dtype float64; data=imdb takes word-index"):
        load(data_config("imdb", path=str(tmp_path / "features.npz")), seed=0)


def test_imdb_refuses_negative_word_indices(tmp_path):
    """A negative index would set a slot counted from the end: a word that is not there."""
    seqs = np.empty(60, dtype=object)
    for i in range(60):
        seqs[i] = [1, 2, -3] if i == 7 else [1, 2, 3]
    y = np.arange(60) % 2
    np.savez(tmp_path / "imdb.npz", x_train=seqs, y_train=y, x_test=seqs, y_test=y)
    with pytest.raises(DataError, match=r"x_train\[7\] holds int64 values from -3; .* must hold"):
        load(data_config("imdb", path=str(tmp_path / "imdb.npz"), num_words=10), seed=0)


# ------------------------------------------------------------------------------------ arrays
def test_an_npz_of_images_keeps_its_test_split_and_trains_a_cnn(tmp_path):
    nines, threes = digit_images(9), digit_images(3, 60)
    x = np.concatenate([nines[:-30], threes[:-15]])
    y = np.r_[np.full(len(nines) - 30, 9), np.full(len(threes) - 15, 3)]
    x_test = np.concatenate([nines[-30:], threes[-15:]])
    y_test = np.r_[np.full(30, 9), np.full(15, 3)]
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x_test, y_test=y_test)
    ds = load(data_config("arrays", path=str(path), positive="3"), seed=0)
    assert ds.task == "binary" and ds.class_names == ["9", "3"] and ds.image_shape == (8, 8, 1)
    assert rows(ds.x_test) == rows((x_test.reshape(45, -1) / 255.0).astype(np.float32))
    assert int(ds.y_test.sum()) == 15
    result = train(
        compose(tmp_path, "data=arrays", f"data.path={path}", "model=cnn", "tracking=none")
    )
    assert result.dataset.class_names == ["9", "3"]  # 3, the rarer, without data.positive
    assert rows(result.dataset.x_test) == rows(ds.x_test)


def test_class_ids_are_multiclass_and_a_0_1_matrix_is_multilabel(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    np.savez(tmp_path / "k.npz", x_train=x, y_train=np.arange(400) % 4)
    ds = load(data_config("arrays", path=str(tmp_path / "k.npz")), seed=0)
    assert ds.task == "multiclass" and ds.class_names == ["0", "1", "2", "3"]
    labels = (rng.random((400, 3)) < 0.3).astype(np.int8)
    np.savez(tmp_path / "m.npz", x_train=x, y_train=labels)
    ds = load(data_config("arrays", path=str(tmp_path / "m.npz")), seed=0)
    assert ds.task == "multilabel" and ds.y_train.shape[1] == 3 and ds.image_shape is None


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(-5, 5), min_size=2, max_size=2, unique=True),
    counts=st.tuples(st.integers(1, 30), st.integers(1, 30)),
)
def test_two_label_values_give_1_to_the_rarer_and_keep_every_sample_s_class(values, counts):
    y = np.repeat(values, counts)
    coding = read_labels(y, None, "y")
    codes = coding.apply(y, "y")
    positive = coding.values[1]
    if set(values) == {0, 1}:
        assert positive == 1
    else:
        rarer = values[int(np.argmin(counts))] if counts[0] != counts[1] else max(values)
        assert positive == rarer
    assert ((codes == 1) == (y == positive)).all()


# ------------------------------------------------------------------------------------ custom
@pytest.mark.parametrize(
    "target, extra",
    [
        ("tests.own_data.nines_and_threes", []),
        ("tests.own_data.digits_frame", ["data.label=digit"]),
    ],
)
def test_a_loader_of_ones_own_trains(tmp_path, target, extra):
    overrides = ["data=custom", f"data._target_={target}", *extra, "tracking=none"]
    result = train(compose(tmp_path, *overrides, "data.positive=3" if extra else "seed=1"))
    assert result.dataset.task == "binary"
    assert int(sum(y.sum() for _, y in result.dataset.splits().values())) == 60


def test_a_loader_gets_its_kwargs(tmp_path):
    target = "data._target_=tests.own_data.nines_and_threes"
    overrides = ["data=custom", target, "+data.kwargs.n_threes=40", "tracking=none"]
    result = train(compose(tmp_path, *overrides))
    assert int(sum(y.sum() for _, y in result.dataset.splits().values())) == 40


# --------------------------------------------------------------------------------- bad input
def undecodable_image(tmp_path: Path) -> tuple[list[str], str]:
    folder = digits_folder(tmp_path, {9: 40, 3: 20})
    (folder / "three" / "broken.png").write_bytes(b"not a png at all")
    return [f"data.path={folder}"], r"data.path: .*three/broken.png does not decode as an image"


def empty_class_folder(tmp_path: Path) -> tuple[list[str], str]:
    folder = digits_folder(tmp_path, {9: 40, 3: 20})
    (folder / "seven").mkdir()
    (folder / "seven" / "notes.txt").write_text("no images here")
    return [f"data.path={folder}"], r"class folder .*/seven holds no images"


def one_class_folder(tmp_path: Path) -> tuple[list[str], str]:
    folder = digits_folder(tmp_path, {9: 40})
    return [f"data.path={folder}"], r"holds \['nine'\]; a classifier needs two class folders"


def sizes_differ(tmp_path: Path) -> tuple[list[str], str]:
    folder = digits_folder(tmp_path, {9: 40, 3: 20})
    from PIL import Image

    Image.new("L", (10, 12)).save(folder / "three" / "big.png")
    return [f"data.path={folder}"], r"image_size=null: .*big.png is \(12, 10\) but .* is \(8, 8\)"


def npz(tmp_path: Path, **arrays) -> str:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return f"data.path={path}"


X, Y = np.zeros((50, 4)), np.arange(50) % 2
BAD_ARRAYS = {
    "no x_train": (dict(y_train=Y), r"bad.npz' lacks \['x_train'\]"),
    "pickled objects": (
        dict(x_train=np.array([[1], "a"], dtype=object), y_train=Y[:2]),
        r"x_train is an object array, stored with pickle",
    ),
    "NaN label": (
        dict(x_train=X, y_train=np.where(Y == 1, np.nan, 0)),
        r"y_train holds 25 missing \(NaN\) labels, the first at row 1",
    ),
    "fractional labels": (dict(x_train=X, y_train=Y * 0.5), r"y_train holds fractions \(\[0.5"),
    "x_test alone": (dict(x_train=X, y_train=Y, x_test=X), r"holds x_test alone"),
    "one class": (dict(x_train=X, y_train=Y * 0), r"holds the one class \[0\]"),
    "string inputs": (dict(x_train=X.astype(str), y_train=Y), r"x_train has dtype <U"),
    "positive not a label": (
        dict(x_train=X, y_train=Y + 3),
        r"data.positive=1 is not a label of .*: y_train; choose one of \[3, 4\]",
    ),
}


@pytest.mark.parametrize("arrays, message", BAD_ARRAYS.values(), ids=BAD_ARRAYS.keys())
def test_arrays_that_do_not_fit_are_refused(tmp_path, arrays, message):
    positive = ["data.positive=1"] if "positive" in message else []
    with pytest.raises(DataError, match=message):
        train(compose(tmp_path, "data=arrays", npz(tmp_path, **arrays), *positive))
    assert_nothing_recorded(tmp_path)


FOLDER_FAULTS = {
    "undecodable image": undecodable_image,
    "empty class folder": empty_class_folder,
    "one class folder": one_class_folder,
    "sizes differ": sizes_differ,
}


@pytest.mark.parametrize("make", FOLDER_FAULTS.values(), ids=FOLDER_FAULTS.keys())
def test_image_folders_that_do_not_fit_are_refused(tmp_path, make):
    overrides, message = make(tmp_path)
    with pytest.raises(DataError, match=message):
        train(compose(tmp_path, "data=image_folder", *overrides))
    assert_nothing_recorded(tmp_path)


def text_fault(tmp_path: Path, fault: str) -> list[str]:
    path = review_table(tmp_path / "reviews.csv", n=100)
    if fault == "label NaN":
        path.write_text(path.read_text().replace(",negative\n", ",\n", 1))
    columns = {"text column missing": "body"}.get(fault, "review")
    return [f"data.path={path}", f"data.text={columns}", "data.label=sentiment"]


TEXT_FAULTS = {
    "text column missing": r"data.text=body: no such column in reviews.csv; its columns are",
    "label NaN": r"data.label=sentiment holds 1 missing \(NaN\) labels, the first at row 0",
}


@pytest.mark.parametrize("fault, message", TEXT_FAULTS.items(), ids=TEXT_FAULTS.keys())
def test_text_tables_that_do_not_fit_are_refused(tmp_path, fault, message):
    with pytest.raises(DataError, match=message):
        train(compose(tmp_path, "data=text_table", *text_fault(tmp_path, fault)))
    assert_nothing_recorded(tmp_path)


@pytest.mark.parametrize("source", ["image_folder", "arrays", "imdb"])
def test_a_missing_path_is_named(tmp_path, source):
    with pytest.raises(DataError, match=r"data.path='.*nowhere' does not exist; give"):
        train(compose(tmp_path, f"data={source}", f"data.path={tmp_path / 'nowhere'}"))
    assert_nothing_recorded(tmp_path)


@pytest.mark.parametrize(
    "target, error, message",
    [
        (
            "nosuch.module.load",
            ConfigError,
            r"data._target_='nosuch.module.load' cannot be imported",
        ),
        ("tests.own_data.NOT_A_FUNCTION", ConfigError, r"is a int, not a function"),
        ("tests.own_data.a_dict", DataError, r"returned a dict; return \(x, y\)"),
        ("tests.own_data.digits_frame", DataError, r"data.label=None: .* name its label column"),
    ],
)
def test_a_loader_that_does_not_fit_is_refused(tmp_path, target, error, message):
    with pytest.raises(error, match=message):
        train(compose(tmp_path, "data=custom", f"data._target_={target}"))
    assert_nothing_recorded(tmp_path)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            "model=cnn data=arrays data.path={flat}",
            r"model.kind=cnn needs image data; .*shape \(4,\)",
        ),
        ("data=text_table data.path=x.csv", r"data.text is missing; name the column"),
    ],
)
def test_what_only_the_data_tells_is_refused(tmp_path, overrides, message):
    flat = npz(tmp_path, x_train=X, y_train=Y)
    args = overrides.format(flat=flat.partition("=")[2]).split()
    with pytest.raises(ConfigError, match=message):
        train(compose(tmp_path, *args))
    assert_nothing_recorded(tmp_path)


CLI_FAULTS = {
    "undecodable image": (
        lambda tmp: ["data=image_folder", *undecodable_image(tmp)[0]],
        r"data.path: .*broken.png does not decode as an image \(a BMP, GIF, JPEG or PNG\)",
    ),
    "loader without its option": (
        lambda tmp: ["data._target_=tests.own_data.a_dict"],
        r"data._target_=tests.own_data.a_dict: a loader of your own is the option data=custom",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("make, message", CLI_FAULTS.values(), ids=CLI_FAULTS.keys())
def test_bad_data_on_the_command_line_is_one_line_and_exit_code_2(tmp_path, make, message):
    folder = tmp_path / "cli"  # beside the store the module's tests are given: none is made here
    folder.mkdir()
    proc = run_cli(folder, *make(folder), check=False, default_env=True)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert re.fullmatch(f"error: {message}.*", line), line
    assert not (folder / "mlflow.db").exists()


def test_imdb_reads_the_acl_imdb_folder_with_its_own_test_split(tmp_path):
    folder = tmp_path / "aclImdb"
    rng = np.random.default_rng(0)
    words = {"neg": NEGATIVE_WORDS, "pos": POSITIVE_WORDS}
    for part, n in (("train", 40), ("test", 15)):
        for name, own in words.items():
            (folder / part / name).mkdir(parents=True)
            for i in range(n):
                review = " ".join(rng.choice([*own, *FILLER], size=10))
                (folder / part / name / f"{i}_7.txt").write_text(f"{review}<br />{part}")
    (folder / "train" / "unsup").mkdir()
    (folder / "train" / "unsup" / "0_0.txt").write_text("never read")
    ds = load(data_config("imdb", path=str(folder), num_words=100, min_val_minority=5), seed=0)
    assert ds.class_names == ["negative", "positive"]
    assert len(ds.y_test) == 30 and len(ds.y_train) + len(ds.y_val) == 80
    assert int(ds.y_test.sum()) == 15
    for f in (folder / "test" / "pos").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"test/pos holds no .txt reviews; .* laid out as aclImdb"):
        load(data_config("imdb", path=str(folder)), seed=0)
