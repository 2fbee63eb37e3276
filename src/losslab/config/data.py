"""One schema per data source, each bound to its YAML in ``conf/data/``.

Every option of the ``data`` group starts its defaults list with its source's schema
(``/schema/data/<source>@_here_``), so a key another source reads (``data.num_words`` on
digits) fails at composition, and each default is written here only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from losslab.config.checks import Choice, ConfigError, at_least, fraction, positive


class DataSource(Choice):
    digits_pair = "digits_pair"
    image_pair = "image_pair"
    image_classes = "image_classes"
    synthetic_fraud = "synthetic_fraud"
    imdb = "imdb"
    multilabel = "multilabel"
    image_folder = "image_folder"
    text_table = "text_table"
    arrays = "arrays"
    custom = "custom"
    table = "table"


class ImageDataset(Choice):
    mnist = "mnist"
    fashion_mnist = "fashion_mnist"


class ColorMode(Choice):  # keras.utils.load_img's color modes
    grayscale = "grayscale"
    rgb = "rgb"
    rgba = "rgba"


class ValSplit(Choice):
    stratified = "stratified"  # stratified and seeded
    tail = "tail"  # the last val_fraction of the unshuffled arrays, as Keras' validation_split


IMAGE_SOURCES = (
    DataSource.digits_pair,
    DataSource.image_pair,
    DataSource.image_classes,
    DataSource.image_folder,
)
# sources whose inputs are images or flat features, known once loaded (Dataset.image_shape)
SHAPE_AT_LOAD = (DataSource.arrays, DataSource.custom)
FALLBACK_SOURCES = (DataSource.synthetic_fraud, DataSource.digits_pair, DataSource.multilabel)


@dataclass
class DataConfig:
    """What every source shares: how validation and test are split off.

    ``seed`` seeds splits and samples (the run's seed when null). ``min_val_minority``: every
    class keeps at least this many samples in validation, and as many in training (multi-label
    data: positive labels of all outputs together), else the run is refused; 0: no floor.
    ``folds`` > 1: k stratified folds of train + validation, one model each; the objective is
    the mean over folds, the threshold is chosen on the out-of-fold predictions and the test
    predictions are the mean of the k models.
    """

    source: DataSource = DataSource.digits_pair
    seed: int | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    val_split: ValSplit = ValSplit.stratified
    min_val_minority: int = 10
    folds: int = 1

    def __post_init__(self) -> None:
        if type(self) is not SCHEMAS[self.source]:
            raise ConfigError(
                f"data.source={self.source} does not match the data option's schema "
                f"({type(self).__name__}); choose a data option instead (data=<option>), or "
                f"start the option's defaults list with /schema/data/{self.source}@_here_"
            )
        fraction("data.val_fraction", self.val_fraction)
        fraction("data.test_fraction", self.test_fraction)
        at_least("data.min_val_minority", self.min_val_minority, 0)
        at_least("data.folds", self.folds, 1)
        if self.folds > 1 and self.val_split == ValSplit.tail:
            raise ConfigError(
                f"data.folds={self.folds} needs data.val_split=stratified; the tail split has "
                "one validation part only"
            )
        self.check()

    def check(self) -> None:
        """The source's own ranges; each schema adds its own."""


def _check_pair(majority: int, minority: int) -> None:
    for key, value in (("majority", majority), ("minority", minority)):
        if value not in range(10):
            raise ConfigError(f"data.{key}={value!r} is not allowed; choose a class 0..9")
    if majority == minority:
        raise ConfigError(f"data.majority={majority} equals data.minority; they must differ")


@dataclass
class DigitsPairConfig(DataConfig):
    """scikit-learn's bundled 8x8 digits: all ``majority`` digits (label 0) and
    ``n_minority`` ``minority`` digits (label 1) for training and validation;
    ``test_per_class`` of each held out for test. No download."""

    source: DataSource = DataSource.digits_pair
    majority: int = 9
    minority: int = 4
    n_minority: int | None = 20
    test_per_class: int = 60

    def check(self) -> None:
        _check_pair(self.majority, self.minority)
        at_least("data.n_minority", self.n_minority, 1, allow_none=True)
        at_least("data.test_per_class", self.test_per_class, 1)


@dataclass
class ImagePairConfig(DataConfig):
    """Two classes of a 28x28 image data set: every training image of ``majority`` and
    ``n_minority`` of ``minority`` (null: all); every test image of both. ``source_dir``: a
    folder with the four IDX files (else ``keras.datasets``)."""

    source: DataSource = DataSource.image_pair
    dataset: ImageDataset = ImageDataset.mnist
    majority: int = 9
    minority: int = 4
    n_minority: int | None = 100
    max_majority: int | None = None
    source_dir: str | None = None

    def check(self) -> None:
        _check_pair(self.majority, self.minority)
        at_least("data.n_minority", self.n_minority, 1, allow_none=True)
        at_least("data.max_majority", self.max_majority, 1, allow_none=True)


@dataclass
class ImageClassesConfig(DataConfig):
    """All ten classes of an image data set (softmax output); ``max_train`` subsamples."""

    source: DataSource = DataSource.image_classes
    dataset: ImageDataset = ImageDataset.fashion_mnist
    source_dir: str | None = None
    max_train: int | None = None

    def check(self) -> None:
        at_least("data.max_train", self.max_train, 1, allow_none=True)


@dataclass
class SyntheticFraudConfig(DataConfig):
    """scikit-learn ``make_classification`` with the fraud data's balance."""

    source: DataSource = DataSource.synthetic_fraud
    n_samples: int = 20000
    n_features: int = 30
    positive_fraction: float = 0.0017
    class_sep: float = 1.0
    clip: float = 5.0

    def check(self) -> None:
        for key in ("n_samples", "n_features", "clip"):
            positive(f"data.{key}", getattr(self, key))
        fraction("data.positive_fraction", self.positive_fraction)


def _required(key: str, value: object, what: str) -> None:
    if value is None or value == "":
        raise ConfigError(f"data.{key} is missing; {what}")


@dataclass
class TextTableConfig(DataConfig):
    """A CSV (also .gz, .zip) or Parquet file of texts and labels: the ``text`` column becomes
    a ``num_words`` multi-hot bag of words (Keras' ``TextVectorization``, adapted on the
    training split only). ``label``: its class column; two values give a binary task with
    ``positive`` the minority (default: 1 of 0/1 labels, else the rarer value), more give
    a multi-class task. ``max_train``: a stratified subsample of training."""

    source: DataSource = DataSource.text_table
    path: str | None = None
    text: str | None = None
    label: str | None = None
    positive: str | None = None
    num_words: int = 10000
    max_train: int | None = None

    def check(self) -> None:
        _required("path", self.path, "give a CSV or Parquet file of texts and labels")
        _required("text", self.text, "name the column that holds the text")
        _required("label", self.label, "name the column that holds the class")
        self._check_sizes()

    def _check_sizes(self) -> None:
        positive("data.num_words", self.num_words)
        at_least("data.max_train", self.max_train, 1, allow_none=True)


@dataclass
class ImdbConfig(TextTableConfig):
    """IMDB reviews as ``num_words`` multi-hot vectors; ``path``: an npz in Keras' layout
    (x_train, y_train, x_test, y_test: word-index sequences), Stanford's ``aclImdb`` folder,
    or a review table read as ``data=text_table`` reads one (columns ``text`` and ``label``),
    else ``keras.datasets.imdb``."""

    source: DataSource = DataSource.imdb
    text: str | None = "review"
    label: str | None = "sentiment"

    def check(self) -> None:
        self._check_sizes()


@dataclass
class MultilabelConfig(DataConfig):
    """scikit-learn ``make_multilabel_classification``: ``n_labels`` sigmoid outputs with
    ``labels_per_sample`` ones per sample on average."""

    source: DataSource = DataSource.multilabel
    n_samples: int = 4000
    n_features: int = 40
    n_labels: int = 12
    labels_per_sample: int = 1

    def check(self) -> None:
        for key in ("n_samples", "n_features", "n_labels", "labels_per_sample"):
            positive(f"data.{key}", getattr(self, key))


@dataclass
class ImageFolderConfig(DataConfig):
    """A folder with one sub-folder of images per class (the layout of Keras'
    ``image_dataset_from_directory``), resized to ``image_size`` [height, width] (null: the
    images' own size, which they must share) in ``color_mode``. Two classes give a binary
    task with ``positive`` the minority folder (default: the smaller); more give a
    multi-class task. Test and validation are stratified fractions."""

    source: DataSource = DataSource.image_folder
    path: str | None = None
    image_size: list[int] | None = None
    color_mode: ColorMode = ColorMode.rgb
    positive: str | None = None

    def check(self) -> None:
        _required("path", self.path, "give a folder with one sub-folder of images per class")
        size = self.image_size
        if size is not None and (len(size) != 2 or min(size) < 1):
            raise ConfigError(f"data.image_size={list(size)} is not allowed; give [height, width]")


@dataclass
class ArraysConfig(DataConfig):
    """An ``.npz`` of ``x_train`` and ``y_train`` (optional ``x_test``, ``y_test``; else a
    stratified test fraction), read without pickle. Labels: 0/1 or two values (``positive``
    names the minority), k class ids, or a 0/1 matrix (multi-label); inputs (n, features) or
    images (n, h, w[, c]), uint8 pixels scaled to [0, 1]."""

    source: DataSource = DataSource.arrays
    path: str | None = None
    positive: str | None = None

    def check(self) -> None:
        _required("path", self.path, "give an .npz with x_train and y_train")


@dataclass
class CustomDataConfig(DataConfig):
    """Your own loader by import path, called with ``kwargs``: it returns ``(x, y)``,
    ``(x_train, y_train, x_test, y_test)`` or a DataFrame of numeric columns and the
    ``label`` column; the labels are read as ``data=arrays`` reads them."""

    source: DataSource = DataSource.custom
    _target_: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    positive: str | None = None

    def check(self) -> None:
        _required("_target_", self._target_, "give an import path, e.g. mypkg.data.load")


class TableSplit(Choice):
    random = "random"  # stratified (by data.group_column's groups when given), seeded
    time = "time"  # by data.time_column: train on the past, validate after it, test last


@dataclass
class TableConfig(DataConfig):
    """The user's own table (CSV, also .gz/.zip; Parquet; Feather), one row per sample.

    ``label``: the class column (two values: binary, ``positive`` the minority, by default the
    rarer value; more: one class per value), or ``labels``: several 0/1 columns (multi-label).
    Features: ``features``, else every other column but ``drop`` (and the time and group
    columns). ``test_path``: a separate test file, else ``test_fraction`` is split off as
    ``split`` says. Integer columns with at most ``category_levels`` values, strings and
    booleans are categories; a string column with more than ``max_categories`` values is
    refused (free text or an id). ``allow_perfect_feature``: train although one feature
    alone separates the training classes (else refused: a label in disguise).
    ``log_columns``: log(x + 0.001) before standardising; ``clip``: standardised numbers
    clipped to +-clip; ``class_names``: shown instead of the label's values; ``fallback``: the
    source used when ``path`` is not given (the credit-card preset's synthetic stand-in).
    """

    source: DataSource = DataSource.table
    path: str | None = None
    label: str | None = None
    labels: list[str] | None = None
    positive: str | None = None
    features: list[str] | None = None
    drop: list[str] = field(default_factory=list)
    test_path: str | None = None
    split: TableSplit = TableSplit.random
    time_column: str | None = None
    group_column: str | None = None
    encoding: str = "utf-8"
    category_levels: int = 10
    max_categories: int = 100
    max_rows: int | None = None
    allow_perfect_feature: bool = False
    log_columns: list[str] = field(default_factory=list)
    clip: float | None = None
    class_names: list[str] | None = None
    fallback: DataSource | None = None

    def check(self) -> None:
        if self.fallback is not None and self.fallback not in FALLBACK_SOURCES:
            raise ConfigError(
                f"data.fallback={self.fallback} is not allowed; choose one of "
                f"{[str(s) for s in FALLBACK_SOURCES]} (they need no file) or null"
            )
        if not self.path and self.fallback is None:
            raise ConfigError("data.path is missing; give the table: data.path=<file>")
        if (self.label is None) == (self.labels is None):
            raise ConfigError(
                f"data.label={self.label!r}, data.labels={self.labels!r}: give one, the class "
                "column (data.label=<column>) or several 0/1 columns (data.labels=[a,b])"
            )
        if self.features is not None and self.drop:
            raise ConfigError(
                f"data.drop={self.drop} with data.features: give one, the columns to use or "
                "the columns to leave out"
            )
        if self.split == TableSplit.time and not self.time_column:
            raise ConfigError("data.split=time needs data.time_column=<column>")
        if self.folds > 1 and (self.split == TableSplit.time or self.group_column):
            raise ConfigError(
                f"data.folds={self.folds}: folds would mix times or groups across training "
                "and validation; use data.folds=1 with data.split=time or data.group_column"
            )
        if self.val_split == ValSplit.tail:
            raise ConfigError("data.val_split=tail is not allowed for tables; use data.split")
        at_least("data.category_levels", self.category_levels, 0)
        at_least("data.max_categories", self.max_categories, 2)
        at_least("data.max_rows", self.max_rows, 1, allow_none=True)
        positive("data.clip", self.clip, allow_none=True)


SCHEMAS: dict[DataSource, type[DataConfig]] = {
    DataSource.digits_pair: DigitsPairConfig,
    DataSource.image_pair: ImagePairConfig,
    DataSource.image_classes: ImageClassesConfig,
    DataSource.synthetic_fraud: SyntheticFraudConfig,
    DataSource.imdb: ImdbConfig,
    DataSource.multilabel: MultilabelConfig,
    DataSource.image_folder: ImageFolderConfig,
    DataSource.text_table: TextTableConfig,
    DataSource.arrays: ArraysConfig,
    DataSource.custom: CustomDataConfig,
    DataSource.table: TableConfig,
}


def loader_without_option(err: BaseException, args: list[str]) -> ConfigError | None:
    """``data._target_=...`` given without ``data=custom``, told as the option that takes it
    (Hydra would say the key is missing and suggest ``+data._target_``, which fails too)."""
    target = next((a for a in args if a.lstrip("+").startswith("data._target_=")), None)
    if target is None or "data=custom" in args or "_target_" not in str(err):
        return None
    path = target.partition("=")[2]
    return ConfigError(
        f"data._target_={path}: a loader of your own is the option data=custom; "
        f"give data=custom data._target_={path}"
    )


def fallback_config(cfg: DataConfig, source: DataSource) -> DataConfig:
    """``source``'s schema, taking from ``cfg`` every setting the two schemas share (the
    splits, ``clip``) and its own defaults for the rest."""
    schema = SCHEMAS[source]
    own = {f.name for f in fields(schema)} - {"source", "path"}
    shared = {
        f.name: getattr(cfg, f.name)
        for f in fields(cfg)
        if f.name in own and getattr(cfg, f.name) is not None
    }
    return schema(source=source, **shared)
