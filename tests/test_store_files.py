"""A ``./mlflow.db`` that is not MLflow's is refused before the data loads and left exactly
as it was: another application's database, a file that is not SQLite, a damaged one. An
empty file and MLflow's own store are used as they are."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from losslab.config import ConfigError
from losslab.tracking.reachable import check_usable, store_error
from losslab.train import train
from tests.helpers import compose, new_store


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _app_db(path, *tables: str) -> None:
    with sqlite3.connect(path) as db:
        for table in tables:
            db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
            db.execute(f"INSERT INTO {table} (name) VALUES ('kept')")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _app_db(p, "customers", "orders"), "another application's SQLite database"),
        (lambda p: _app_db(p, "experiments"), "tables: experiments"),
        (lambda p: p.write_text("name,churned\nann,0\n"), "is not a SQLite database"),
        (
            lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000),
            "is a damaged SQLite database",
        ),
    ],
)
def test_a_file_that_is_not_an_mlflow_store_is_refused_and_left_alone(tmp_path, make, message):
    path = tmp_path / "mlflow.db"
    make(path)
    before = _digest(path)
    with pytest.raises(ConfigError, match=message) as refused:
        check_usable(f"sqlite:///{path}", None, "offline")  # spilling would not help it
    assert str(refused.value).startswith(f"tracking.uri=sqlite:///{path}: ")
    assert message in (store_error(f"sqlite:///{path}") or "")
    assert _digest(path) == before


def test_a_run_on_another_applications_database_is_refused_before_its_data(tmp_path):
    path = tmp_path / "mlflow.db"
    _app_db(path, "customers")
    before = _digest(path)
    cfg = compose(tmp_path, "tracking=local", f"tracking.uri=sqlite:///{path}")
    with pytest.raises(ConfigError, match="another application's SQLite database"):
        train(cfg)
    assert _digest(path) == before
    assert not (tmp_path / "out" / "model.keras").exists()


def test_an_empty_file_and_mlflows_own_store_are_used(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    assert check_usable(f"sqlite:///{empty}", None, "fail") is None
    assert check_usable(new_store(tmp_path / "own"), None, "fail") is None  # MLflow made it
