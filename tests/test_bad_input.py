"""Bad data and config: one clear error naming the value and what is allowed, raised before
training starts, and no run recorded."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from losslab.config import ConfigError, to_objects
from losslab.data import DataError, load
from losslab.train import train
from tests.helpers import (
    LOGGING_LEFT_ALONE,
    assert_nothing_recorded,
    compose,
    free_port,
    run_cli,
)

COLUMNS = ["Time", *[f"V{i}" for i in range(1, 29)], "Amount", "Class"]


def creditcard_csv(folder: Path, n: int = 400, frauds: int = 60, **change) -> Path:
    """A small file in the Kaggle layout; ``change`` sets (row, column) cells or drops columns."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(n, len(COLUMNS))), columns=COLUMNS)
    df["Time"] = np.arange(n)
    df["Amount"] = rng.uniform(1, 100, n)
    df["Class"] = (np.arange(n) < frauds).astype(int)
    for column in change.pop("drop", []):
        df = df.drop(columns=column)
    for column, make in change.pop("add", {}).items():
        df[column] = make(df)
    for (row, column), value in change.pop("cells", {}).items():
        df[column] = df[column].astype(object if isinstance(value, str) else df[column].dtype)
        df.loc[row, column] = value
    path = folder / "cards.csv"
    df.to_csv(path, index=False)
    header, rest = path.read_text().split("\n", 1)
    path.write_text(header.replace("Class ", "Class") + "\n" + rest)  # a header written twice
    return path


CSV_FAULTS = {
    "missing columns": ({"drop": ["V2", "Amount"]}, r"no column \['V2', 'Amount'\] in .*cards.csv"),
    "non-numeric value": ({"cells": {(3, "V5"): "abc"}}, r"column 'V5' holds numbers and text"),
    "inf feature": ({"cells": {(9, "Amount"): np.inf}}, r"column 'Amount' of .* holds inf in 1"),
    "label outside 0/1": (
        {"cells": {(5, "Class"): 2}},
        r"data.class_names=\['legit', 'fraud'\]: the label gives 3 classes \(\['0', '1', '2'\]\)",
    ),
    "duplicated label header": (
        {"add": {"Class ": lambda df: df["Class"]}},
        r"cards.csv' names columns \['Class'\] more than once",
    ),
}


def test_columns_beyond_the_credit_card_features_are_not_trained_on(tmp_path):
    """A label in disguise or a note next to the Kaggle columns: the preset names its
    features, so neither reaches the model."""
    leak = {"leak": lambda df: 3 * df["Class"], "note": lambda df: "hello"}
    path = creditcard_csv(tmp_path, add=leak)
    conf = to_objects(compose(tmp_path, "data=creditcard", f"data.path={path}"))
    ds = load(conf.data, conf.seed, tmp_path)
    assert ds.input_shape == (29,) and "leak" not in ds.raw.example.columns


@pytest.mark.parametrize("change, message", CSV_FAULTS.values(), ids=CSV_FAULTS.keys())
def test_bad_csv_is_refused_before_training(tmp_path, change, message):
    path = creditcard_csv(tmp_path, **change)
    cfg = compose(tmp_path, "data=creditcard", f"data.path={path}")
    with pytest.raises(DataError, match=message):
        train(cfg)
    assert_nothing_recorded(tmp_path)


def unreadable_files(folder: Path) -> dict[str, tuple[Path, str]]:
    header_only = folder / "header.csv"
    header_only.write_text(",".join(COLUMNS) + "\n")
    binary = folder / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    return {
        "directory": (folder, r"data.path='.*' is a directory"),
        "header only": (header_only, r"header.csv' holds no rows"),
        "binary": (binary, r"binary.csv': not (utf-8 text|readable as a CSV)"),
        "missing": (folder / "nowhere.csv.gz", r"data.path='.*nowhere.csv.gz' does not exist"),
    }


@pytest.mark.parametrize("kind", ["directory", "header only", "binary", "missing"])
def test_an_unreadable_file_is_named_with_what_is_wrong(tmp_path, kind):
    path, message = unreadable_files(tmp_path)[kind]
    with pytest.raises(DataError, match=message) as err:
        train(compose(tmp_path, "data=creditcard", f"data.path={path}"))
    assert str(err.value).isprintable()  # no raw bytes reach the terminal
    assert_nothing_recorded(tmp_path)


def test_single_class_training_data_is_refused(tmp_path):
    path = creditcard_csv(tmp_path, frauds=0)
    with pytest.raises(DataError, match=r"every row .* is '0'; a classifier needs two classes"):
        train(compose(tmp_path, "data=creditcard", f"data.path={path}"))
    assert_nothing_recorded(tmp_path)


def test_too_few_samples_of_a_class_to_split(tmp_path):
    path = creditcard_csv(tmp_path, frauds=1)
    with pytest.raises(DataError, match=r"classes \{1: 1\} have fewer than 2 samples"):
        train(compose(tmp_path, "data=creditcard", f"data.path={path}"))
    assert_nothing_recorded(tmp_path)


def test_more_minority_samples_than_exist(tmp_path):
    with pytest.raises(DataError, match="data.n_minority=100000"):
        train(compose(tmp_path, "data.n_minority=100000"))
    assert_nothing_recorded(tmp_path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.dropout=-0.1", r"model.dropout=-0.1 is not allowed; it must lie in \[0, 1\)"),
        ("model.dropout=1.0", r"model.dropout=1.0 is not allowed; it must lie in \[0, 1\)"),
        ("model.units=[]", r"model.units=\[\]: give one or more sizes > 0"),
        ("optimizer.lr=0", r"optimizer.lr=0.0 is not allowed; it must be a finite number > 0"),
        ("optimizer.lr=-1e-3", r"optimizer.lr=-0.001 is not allowed"),
        ("optimizer.weight_decay=-1", r"optimizer.weight_decay=-1.0 is not allowed; .*>= 0"),
        ("imbalance.ratio=-2", r"imbalance.ratio=-2.0 is not allowed"),
        ("imbalance.ratio=0", r"imbalance.ratio=0.0 is not allowed"),
        ("trainer.batch_size=0", r"trainer.batch_size=0 is not allowed; it must be >= 1"),
        ("trainer.epochs=-1", r"trainer.epochs=-1 is not allowed; it must be >= 1"),
        ("tracking.offline_after_s=0", r"tracking.offline_after_s=0.0 is not allowed"),
        ("data.folds=0", r"data.folds=0 is not allowed; it must be >= 1"),
        ("data.majority=3", r"data.majority=3 equals data.minority; they must differ"),
        ("evaluation.max_fpr=1", r"evaluation.max_fpr=1.0 is not allowed; it must lie in \(0, 1\)"),
        ("evaluation.confidence=1", r"evaluation.confidence=1.0 is not allowed; .* \(0, 1\)"),
        # Hydra's hint for a misspelt key is to add it with +: refused, not trained around
        ("+trainer.epoch=2", r"trainer.epoch=2: no such key; the keys of trainer are \[.*'epochs'"),
        ("+trainer.early_stopping.patiense=3", r"trainer.early_stopping.patiense=3: no such key"),
    ],
)
def test_out_of_range_config_is_refused_before_training(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        train(compose(tmp_path, override))
    assert_nothing_recorded(tmp_path)


def test_early_stopping_on_a_metric_not_recorded_each_epoch(tmp_path):
    """The Optuna preset monitors the objective; one computed after training cannot be."""
    overrides = ("trainer.early_stopping.enabled=true", "trainer.early_stopping.monitor=val_f1")
    with pytest.raises(
        ConfigError, match=r"monitor='val_f1' is not recorded every epoch.*enabled=false"
    ):
        train(compose(tmp_path, *overrides))
    assert_nothing_recorded(tmp_path)


CLI_BAD_INPUT = {
    "choice": (
        "model.kind=nosuch",
        r"model.kind=nosuch: Invalid value 'nosuch', expected one of \[mlp, cnn\]",
    ),
    "type": (
        "trainer.epochs=many",
        r"trainer.epochs=many: Value 'many' of type 'str' could not be",
    ),
    "misspelt key": ("trainer.epoch=3", r"Key 'epoch' not in 'TrainerConfig'"),
    "key of another source": ("data.num_words=5", r"Key 'num_words' not in 'DigitsPairConfig'"),
    "unknown top-level key": ("+foo=1", r"foo=1: no such key; the top-level keys are"),
    "group option": ("loss=nope", r"Could not find 'loss/nope'; Available options in 'loss': bce;"),
    "range": ("model.dropout=1.2", r"model.dropout=1.2 is not allowed; it must lie in \[0, 1\)"),
    "negative decay": ("optimizer.weight_decay=-1", r"optimizer.weight_decay=-1.0 is not allowed"),
    "missing file option": ("data=creditcard", r"data.path is missing; give the table"),
    "direction": ("direction=up", r"direction='up': use maximize or minimize"),
    "directions": (
        "objective=[val_pr_auc,val_loss] direction=maximize",
        r"give one direction per objective",
    ),
    # what only Keras can judge, asked before the data loads
    "activation": ("model.activation=nosuch", r"model.activation=nosuch: not a Keras activation"),
    "focal gamma": ("loss=focal loss.kwargs.gamma=-1", r"loss.kwargs.gamma=-1 is not allowed"),
    "keras loss": (
        "loss=keras loss.class_name=NoSuchLoss",
        r"loss.class_name=NoSuchLoss: not a Keras loss class; choose one of \['BinaryCross",
    ),
    "seed": ("seed=-1", r"seed=-1 is not allowed; use an integer in \[0, "),
    # where the run would be recorded or written
    "store scheme": ("tracking.uri=garbage://x", r"unsupported scheme 'garbage'; MLflow takes"),
    "store not running": (
        "tracking=server tracking.uri=http://127.0.0.1:{port} data=creditcard data.path=/nowhere",
        r"tracking.uri=http://127.0.0.1:\d+: no MLflow server answers \(Connection refused\); "
        r"start it \(mlflow server --host 127.0.0.1 --port \d+\)",
    ),
    "artifact folder": (
        "tracking.artifact_location=/proc/x/art",
        r"tracking.artifact_location=/proc/x/art: cannot create it",
    ),
    "output folder": ("hydra.run.dir=/proc/x", r"hydra.run.dir=/proc/x: cannot create it"),
    # sweeps: refused before their parent run exists
    "basic sweep interval": (
        "-m optimizer.lr=interval(1,0)",
        r"interval\(\) is a search range; Hydra's basic sweeper takes lists",
    ),
    "empty search interval": (
        "-m hparams_search=optuna optimizer.lr=interval(1,0)",
        r"optimizer.lr=interval\(1.0, 0.0\) is empty",
    ),
    "sweep selecting on test data": (
        "-m hparams_search=optuna objective=test_pr_auc",
        r"objective='test_pr_auc' is computed on the test split; a sweep must select on "
        r"validation data: use e.g. objective=val_recall_at_fpr or objective=val_pr_auc",
    ),
    "sweep direction": (
        "-m hparams_search=optuna hydra.sweeper.direction=maximise",
        r"hydra.sweeper.direction='maximise': use maximize or minimize",
    ),
    "sweep share per command": (
        "-m hparams_search=optuna hydra.sweeper.trials_per_run=0",
        r"hydra.sweeper.trials_per_run=0: must be >= 1, or null for no limit",
    ),
    "sweep storage": (
        "-m hparams_search=optuna hydra.sweeper.storage=foo.db",
        r"hydra.sweeper.storage='foo.db' is not a storage: use a SQLAlchemy URL",
    ),
    "sweep storage driver": (
        "-m hparams_search=optuna hydra.sweeper.storage=mysql://u@127.0.0.1/db",
        r"hydra.sweeper.storage: the driver of mysql:// is missing \(MySQLdb\)",
    ),
    "study database down": (
        "-m hparams_search=optuna "
        "hydra.sweeper.storage=postgresql+psycopg://postgres:pw9secret@127.0.0.1:{port}/optuna",
        r"hydra.sweeper.storage=postgresql\+psycopg://postgres:\*\*\*@127.0.0.1:\d+/optuna: "
        r"the study's database does not answer \(connection failed: .*Connection refused\)",
    ),
    "sweeper direction against the objective's": (
        "-m hydra/sweeper=optuna",
        r"hydra.sweeper.direction=\['minimize'\] but direction=\['maximize'\] for objective",
    ),
    "one direction for two objectives in a sweep": (
        "-m hparams_search=optuna objective=[val_pr_auc,val_loss] direction=maximize",
        r"give one direction per objective",
    ),
    "brute force over an interval": (
        "-m hparams_search=optuna hydra/sweeper/sampler=bruteforce",
        r"bruteforce: optimizer.lr is a continuous interval",
    ),
    "custom search space not found": (
        "-m hparams_search=optuna hydra.sweeper.custom_search_space=nowhere.space",
        r"hydra.sweeper.custom_search_space=nowhere.space: not a function",
    ),
    "grid of a continuous range": (
        "-m hparams_search=optuna hydra/sweeper/sampler=grid",
        r"hydra.sweeper.sampler: .*optimizer.lr",
    ),
    # known once the data is loaded: the default data validates on 30 9s, 1% at 95% needs 299
    "validation too small to certify": (
        "evaluation.threshold=fpr_bound",
        r"evaluation.threshold=fpr_bound: validation holds 30 majority samples; bounding the "
        r"false-positive rate at evaluation.max_fpr=0.01 with evaluation.confidence=0.95 needs "
        r"at least 299",
    ),
    "sweep on validation too small to certify": (
        "-m hparams_search=optuna evaluation.threshold=fpr_bound",
        r"evaluation.threshold=fpr_bound: validation holds 30 majority samples; .* needs at "
        r"least 299",
    ),
    # 20 4s: 3 folds leave 6 or 7 in a validation part, under the floor of 10
    "folds under the validation floor": (
        "-m hparams_search=optuna data=digits_9v4 data.folds=3",
        r"data.folds=3: every trial splits alike.*; data.folds=2 is the largest that works",
    ),
}


# one case per contract through the command itself, with MLflow's default environment: a
# config error, a sweep's, the store's (MLflow's client would retry a missing server for
# minutes) and one known once the data is loaded
AS_A_COMMAND = (
    "range",
    "empty search interval",
    "store not running",
    "validation too small to certify",
)


def assert_one_line_and_nothing_recorded(tmp_path: Path, stderr: str, message: str) -> None:
    """The contract of a refusal: one line (no traceback, no report), no store, no parent."""
    (line,) = stderr.splitlines()
    assert re.fullmatch(f"error: .*{message}.*", line), line
    assert not (tmp_path / "mlflow.db").exists()
    assert not list(tmp_path.rglob("mlflow_parent_run_id"))


@pytest.mark.parametrize("overrides, message", CLI_BAD_INPUT.values(), ids=CLI_BAD_INPUT.keys())
def test_bad_input_ends_in_one_line_and_exit_code_2_before_anything_is_recorded(
    tmp_path, monkeypatch, capsys, overrides, message
):
    """The command's own entry point (``losslab.app.run``) in this process, in ``tmp_path``;
    Hydra's logging left as pytest set it (a job's logging setup would close the handlers
    that modules imported by earlier tests hold on the test's captured streams)."""
    from losslab.app import run

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train.py"])
    with pytest.raises(SystemExit) as ended:
        run([*overrides.format(port=free_port()).split(), *LOGGING_LEFT_ALONE])
    assert ended.value.code == 2
    assert_one_line_and_nothing_recorded(tmp_path, capsys.readouterr().err, message)


@pytest.mark.slow
@pytest.mark.parametrize("case", AS_A_COMMAND)
def test_the_command_line_answers_bad_input_with_one_line_and_exit_code_2(tmp_path, case):
    """As a user starts it, with MLflow's default environment: nothing but the one line (no
    TensorFlow start-up either), exit code 2, nothing recorded."""
    overrides, message = CLI_BAD_INPUT[case]
    proc = run_cli(
        tmp_path, *overrides.format(port=free_port()).split(), check=False, default_env=True
    )
    assert proc.returncode == 2, proc.stderr
    assert_one_line_and_nothing_recorded(tmp_path, proc.stderr, message)


@pytest.mark.slow
def test_the_full_traceback_is_there_when_asked(tmp_path):
    proc = run_cli(tmp_path, "model.dropout=1.2", check=False, env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "model.dropout=1.2 is not allowed" in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_open_mappings_still_take_new_keys(tmp_path):
    """``tags`` and ``loss.kwargs`` are meant to take any key; only schema nodes are closed."""
    from losslab.config import to_objects

    conf = to_objects(
        compose(tmp_path, "+tags.team=fraud", "loss=bce", "+loss.kwargs.label_smoothing=0.1")
    )
    assert conf.tags["team"] == "fraud"
    assert conf.loss.kwargs == {"label_smoothing": 0.1}
