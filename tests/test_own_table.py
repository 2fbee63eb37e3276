"""``data=table``: the user's own table trains, splits by time and group, refuses what it
cannot use with one clear line, and logs a model that takes raw rows."""

from __future__ import annotations

import json
import re

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient

from losslab.config import ConfigError
from losslab.config.data import TableConfig
from losslab.data import DataError, load
from losslab.data.table import _split
from losslab.train import train
from tests.helpers import assert_nothing_recorded, compose, run_cli, runs_by_type
from tests.tables import churn_table, write
from tests.test_serving import model_server

# each test records into a new store of its own, copied (tests/helpers.py: new_store)
pytestmark = pytest.mark.usefixtures("mlflow_db")

CHURN = ["data=table", "data.label=churned", "data.drop=[customer,day]"]


@pytest.fixture
def store(monkeypatch):
    """Point MLflow's client at a store for the test only (``models:/`` URIs need one)."""

    def use(uri: str) -> None:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(None)

    yield use
    mlflow.set_tracking_uri(None)


def table_config(path, **settings) -> TableConfig:
    settings.setdefault("drop", ["customer", "day"])
    return TableConfig(path=str(path), label=settings.pop("label", "churned"), **settings)


def test_a_table_trains_and_its_logged_model_answers_raw_rows(tmp_path, store):
    """Strings, missing values, a logged and a clipped column, a time split: the logged
    model, given the job's own raw test rows, answers the job's test probabilities; an unseen
    category and nulls are answered."""
    path = write(churn_table(), tmp_path)
    cfg = compose(
        tmp_path,
        *CHURN,
        f"data.path={path}",
        "data.split=time",
        "data.time_column=day",
        "data.log_columns=[usage]",
        "data.clip=2.5",
        "trainer.epochs=2",
        "tracking.log_model=true",
    )
    result = train(cfg)
    assert result.dataset.task == "binary" and result.dataset.class_names == ["no", "yes"]
    raw = result.dataset.raw.test
    features = ["usage", "tenure", "plan", "region", "support_calls", "monthly_fee"]
    assert list(raw.columns) == features
    store(cfg.tracking.uri)
    model = mlflow.pyfunc.load_model(result.model_uri)
    served = np.asarray(model.predict(raw)).ravel()
    np.testing.assert_allclose(served, result.evaluation.p_test.ravel(), atol=1e-6)
    odd = raw.iloc[:3].copy()
    odd["plan"] = ["enterprise", None, "basic"]
    odd["usage"] = [np.nan, 5.0, 1e6]
    answers = np.asarray(model.predict(odd)).ravel()
    assert answers.shape == (3,) and np.all((answers >= 0) & (answers <= 1))
    inputs = {c["name"]: c["type"] for c in model.metadata.get_input_schema().to_dict()}
    assert inputs == {
        "usage": "double",
        "tenure": "long",
        "plan": "string",
        "region": "string",
        "support_calls": "long",
        "monthly_fee": "double",
    }


@pytest.mark.parametrize("name", ["churn.csv", "churn.csv.gz", "churn.csv.zip", "churn.parquet"])
def test_every_file_kind_gives_the_same_data(tmp_path, name):
    df = churn_table(600, positives=0.1)
    if name.endswith((".gz", ".zip")):
        df.to_csv(tmp_path / name, index=False)
        path = tmp_path / name
    else:
        path = write(df, tmp_path, name)
    ds = load(table_config(path), seed=0)
    reference = load(table_config(write(df, tmp_path, "plain.feather")), seed=0)
    assert ds.fingerprint() == reference.fingerprint()
    assert ds.class_counts()["train"][1] > 0


def test_the_positive_class_is_the_rarer_value_unless_named(tmp_path):
    path = write(churn_table(600, positives=0.1), tmp_path)
    assert load(table_config(path), seed=0).class_names == ["no", "yes"]
    ds = load(table_config(path, label="region", positive="east"), seed=0)
    assert ds.task == "binary" and ds.class_names == ["not east", "east"]
    share = np.mean(np.concatenate([ds.y_train, ds.y_val, ds.y_test]))
    assert 0.15 < share < 0.35


def test_a_label_with_four_values_is_a_multiclass_task(tmp_path):
    path = write(churn_table(900), tmp_path)
    ds = load(table_config(path, label="region", drop=["customer", "day"]), seed=0)
    assert ds.task == "multiclass" and ds.class_names == ["east", "north", "south", "west"]
    assert all(min(counts) >= 10 for counts in ds.class_counts().values())


def test_a_multiclass_table_trains_and_its_model_answers_one_probability_per_class(tmp_path, store):
    path = write(churn_table(900), tmp_path)
    overrides = ["data=table", f"data.path={path}", "data.label=region", "data.drop=[customer,day]"]
    more = ["loss=categorical_ce", "objective=val_macro_f1", "tracking.log_model=true"]
    cfg = compose(tmp_path, *overrides, *more)
    result = train(cfg)
    store(cfg.tracking.uri)
    served = mlflow.pyfunc.load_model(result.model_uri).predict(result.dataset.raw.test)
    assert served.shape == (len(result.dataset.y_test), 4)
    np.testing.assert_allclose(served, result.evaluation.p_test, atol=1e-6)


def test_several_label_columns_are_a_multilabel_task(tmp_path):
    df = churn_table(900).assign(
        a=lambda d: (d.usage.fillna(0) > 30).astype(int), b=lambda d: (d.tenure > 50).astype(int)
    )
    cfg = TableConfig(path=str(write(df, tmp_path)), labels=["a", "b"], drop=["customer", "day"])
    ds = load(cfg, seed=0)
    assert ds.task == "multilabel" and ds.class_names == ["a", "b"] and ds.y_train.shape[1] == 2


def test_unseen_categories_at_test_time_encode_as_zeros(tmp_path):
    df = churn_table(900)
    test = churn_table(300, seed=1)
    test.loc[:20, "region"] = "mars"
    cfg = table_config(write(df, tmp_path), test_path=str(write(test, tmp_path, "later.csv")))
    ds = load(cfg, seed=0)
    assert len(ds.x_test) == 300 and np.isfinite(ds.x_test).all()
    region = dict(ds.raw.encoding["categories"])["region"]
    assert region == ["east", "north", "south", "west"]


def _times_strategy():
    return st.lists(st.integers(0, 50), min_size=120, max_size=300)


@settings(max_examples=25, deadline=None)
@given(times=_times_strategy(), seed=st.integers(0, 10_000))
def test_a_time_split_never_tests_on_rows_older_than_a_training_row(times, seed):
    rng = np.random.default_rng(seed)
    n = len(times)
    y = np.zeros(n, dtype=np.float32)
    y[rng.choice(n, size=n // 4, replace=False)] = 1
    df = pd.DataFrame({"t": times, "x": rng.normal(size=n)})
    cfg = TableConfig(
        path="unused.csv", label="y", split="time", time_column="t", min_val_minority=1
    )
    try:
        (train_, _), (val, _), (test, _) = _split(df, y, cfg, seed, None)
    except DataError as err:  # a cut without both classes on each side: refused, never used
        assert "need at least 1 rows of every class" in str(err)
        return
    assert train_["t"].max() <= val["t"].min() <= val["t"].max() <= test["t"].min()
    assert len(train_) + len(val) + len(test) == n


def test_a_group_stays_on_one_side(tmp_path):
    path = write(churn_table(1500), tmp_path)
    cfg = table_config(path, drop=["day"], group_column="customer")
    df = churn_table(1500)
    y = (df["churned"] == "yes").to_numpy(np.float32)
    (train_, _), (val, _), (test, _) = _split(df, y, cfg, 0, None)
    sides = [set(part["customer"]) for part in (train_, val, test)]
    assert not sides[0] & sides[1] and not sides[0] & sides[2] and not sides[1] & sides[2]
    assert load(cfg, seed=0).class_counts()["test"][1] >= 1


def _refund(folder):
    """``refund`` is set for every churned customer, and only for them: a label in disguise."""
    df = churn_table(300, positives=0.2)
    return write(df.assign(refund=df.churned == "yes"), folder)


def _notes(folder):
    """``note``: a free-text column, one string per two rows."""
    df = churn_table(300, positives=0.2)
    return write(df.assign(note=[f"called about {i // 2}" for i in range(300)]), folder)


def _latin1(folder):
    path = folder / "accents.csv"
    df = churn_table(300, positives=0.2)
    df["region"] = df["region"].replace("north", "nörd")
    path.write_bytes(df.to_csv(index=False).encode("latin-1"))
    return path


BAD_TABLES = {
    "missing file": (lambda f: f / "nowhere.csv", {}, r"data.path='.*nowhere.csv' does not exist"),
    "missing label": (None, {"label": "gone"}, r"data.label=gone: no column \['gone'\]"),
    "one class": (
        lambda f: write(churn_table(300).assign(churned="no"), f),
        {},
        r"data.label=churned: every row .* is 'no'; a classifier needs two classes",
    ),
    "NaN label": (
        lambda f: write(churn_table(300).assign(churned=lambda d: d.churned.where(d.index > 2)), f),
        {},
        r"data.label=churned: 3 rows .* have no label \(NaN\)",
    ),
    "positive not a value": (
        None,
        {"positive": "maybe"},
        r"data.positive=maybe: not a value of churned; choose one of \['no', 'yes'\]",
    ),
    "not UTF-8": (
        _latin1,
        {},
        r"data.path=.*accents.csv': not utf-8 text \(byte 0xf6 .*data.encoding=latin-1",
    ),
    "free text": (
        _notes,
        {},
        r"column 'note' holds 1\d\d distinct strings in the training rows; .*categories=100",
    ),
    "id column": (
        None,
        {"drop": ["customer"]},
        r"column 'day' holds a different value in every row .* data.drop=\[day\]",
    ),
    "too few minority rows": (
        lambda f: write(churn_table(300, positives=0.05), f),
        {"min_val_minority": 8},
        r"data.min_val_minority: validation and training each need at least 8 rows of every "
        r"class, but class 1: 2 in validation, 10 in training",
    ),
    "perfect feature": (
        _refund,
        {},
        r"data.allow_perfect_feature=false: column \['refund'\] alone separates",
    ),
    "time split without column": (None, {"split": "time"}, r"data.split=time needs"),
    "folds across groups": (
        None,
        {"group_column": "customer", "folds": 3},
        r"data.folds=3: folds would mix times or groups",
    ),
}


@pytest.mark.parametrize("make, settings, message", BAD_TABLES.values(), ids=BAD_TABLES.keys())
def test_bad_tables_are_refused_with_what_is_allowed(tmp_path, make, settings, message):
    path = (make or (lambda f: write(churn_table(300, positives=0.2), f)))(tmp_path)
    with pytest.raises((DataError, ConfigError), match=message):
        load(table_config(path, **settings), seed=0)


def test_a_perfect_feature_trains_when_allowed(tmp_path, caplog):
    path = _refund(tmp_path)
    ds = load(table_config(path, allow_perfect_feature=True), seed=0)
    assert ds.x_train.shape[1] > 0
    assert "['refund'] alone separates the training classes" in caplog.text


def test_a_refused_table_records_no_run(tmp_path):
    path = write(churn_table(300).assign(churned="no"), tmp_path)
    with pytest.raises(DataError, match="a classifier needs two classes"):
        train(compose(tmp_path, *CHURN, f"data.path={path}", "tracking=local"))
    assert_nothing_recorded(tmp_path)


def test_a_bad_argument_is_refused_before_a_bad_table_loading_beside_it(tmp_path):
    """The table loads in a thread while Keras starts; the argument checks made meanwhile
    still speak first, and the table's own refusal comes when the arguments pass."""
    path = write(churn_table(300).assign(churned="no"), tmp_path)
    overrides = [*CHURN, f"data.path={path}", "tracking=local"]
    with pytest.raises(ConfigError, match="model.activation=nosuch: not a Keras activation"):
        train(compose(tmp_path, *overrides, "model.activation=nosuch"))
    with pytest.raises(DataError, match="a classifier needs two classes"):
        train(compose(tmp_path, *overrides))
    assert_nothing_recorded(tmp_path)


def test_the_overrides_a_user_types_compose(tmp_path):
    cfg = compose(tmp_path, *CHURN, "data.path=churn.csv", "data.positive=yes")
    assert cfg.data.source == "table" and cfg.data.positive == "yes"
    with pytest.raises(Exception, match=re.escape("data.labl")):
        compose(tmp_path, *CHURN, "data.path=churn.csv", "data.labl=x")


CLI_BAD_TABLES = {
    "missing file": (lambda f: f / "nowhere.csv", "data.path='nowhere.csv' does not exist"),
    "not UTF-8": (_latin1, "data.path='accents.csv': not utf-8 text (byte 0xf6"),
    "perfect feature": (_refund, "data.allow_perfect_feature=false: column ['refund'] alone"),
    "too few minority rows": (
        lambda f: write(churn_table(300, positives=0.05), f),
        "data.min_val_minority: validation and training each need at least 10 rows",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("make, message", CLI_BAD_TABLES.values(), ids=CLI_BAD_TABLES.keys())
def test_the_command_line_refuses_a_bad_table_with_one_line(tmp_path, make, message):
    path = make(tmp_path)
    proc = run_cli(tmp_path, *CHURN, f"data.path={path.name}", check=False, default_env=True)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: ") and message in line, line
    assert_nothing_recorded(tmp_path)


@pytest.mark.slow
def test_a_table_sweeps_and_its_served_model_answers_raw_json_records(tmp_path, store):
    """Three trials through the command; a trial's logged model served over REST answers
    JSON records of raw rows (an unseen category, a null) as it does in process."""
    write(churn_table(), tmp_path)
    proc = run_cli(
        tmp_path,
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=3",
        *CHURN,
        "data.path=churn.csv",
        "data.group_column=customer",
        "trainer.epochs=2",
        "trainer.verbose=0",
    )
    said = proc.stdout + proc.stderr
    assert proc.stdout.count("validation at threshold") == 3, said  # each trial: validation
    assert said.count("test, chosen trial") == 1, said  # the sweep: the chosen trial's test
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    _, jobs = runs_by_type(tmp_path)
    assert len(jobs) == 3
    (logged, *_) = MlflowClient(uri).search_logged_models([jobs[0].info.experiment_id])
    rows = churn_table(4, seed=3).drop(columns=["customer", "day", "churned"])
    rows.loc[0, "plan"], rows.loc[1, "usage"], rows.loc[2, "region"] = "enterprise", None, None
    records = json.loads(rows.to_json(orient="records"))
    with model_server(tmp_path, uri, logged.model_uri) as url:
        answer = requests.post(f"{url}/invocations", json={"dataframe_records": records})
    assert answer.status_code == 200, answer.text
    served = np.asarray(answer.json()["predictions"], dtype=float).ravel()
    store(uri)
    in_process = np.asarray(mlflow.pyfunc.load_model(logged.model_uri).predict(rows)).ravel()
    np.testing.assert_allclose(served, in_process, atol=1e-6)
    assert served.shape == (4,) and np.all((served > 0) & (served < 1))
