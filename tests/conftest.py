"""Fixtures: the test environment, a real MLflow server, a real PostgreSQL server and a
one-node Slurm cluster."""

from __future__ import annotations

import os

import pytest

# before MLflow and TensorFlow are imported by the helpers and the tests
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
os.environ.setdefault("DO_NOT_TRACK", "true")

from tests import slurm  # noqa: E402
from tests.helpers import MlflowServer, new_store, postgres_server  # noqa: E402


@pytest.fixture
def mlflow_db(tmp_path) -> str:
    """A new MLflow store at ``tmp_path/mlflow.db`` (where a run started there records), its
    URI: for tests that record into a store, not for those that check one is never made."""
    return new_store(tmp_path)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on 127.0.0.1, stopped after the session."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server (Debian package) on 127.0.0.1 with an empty database."""
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A one-node Slurm cluster with two GPUs (tests/slurm.py), stopped after the session; a
    test submits to it with its ``env`` (``SLURM_CONF``) added to the process's."""
    if not slurm.AVAILABLE:
        pytest.skip(slurm.MISSING)
    with slurm.cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
