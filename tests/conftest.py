"""Fixtures: the test environment, a real MLflow server and a real PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

# before MLflow and TensorFlow are imported by the helpers and the tests
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
os.environ.setdefault("DO_NOT_TRACK", "true")

from tests.helpers import POSTGRES_BINS, MlflowServer, free_port  # noqa: E402


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on 127.0.0.1, stopped after the session."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    yield server.start()
    server.stop()


def _postgres_bin() -> Path:
    return POSTGRES_BINS[-1].parent


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server (Debian package) on 127.0.0.1 with an empty database.

    PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` user.
    """
    import shutil
    import tempfile

    bindir = _postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="losslab-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    subprocess.run(
        [
            *as_user,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = open(folder / "server.log", "w")  # noqa: SIM115 - written until the server stops
    proc = subprocess.Popen(
        [
            *as_user,
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-k",
            str(folder),
            "-F",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        ready = subprocess.run(
            [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
        )
        if ready.returncode == 0:
            break
        if proc.poll() is not None:
            raise RuntimeError((folder / "server.log").read_text())
        time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("PostgreSQL did not start:\n" + (folder / "server.log").read_text())
    subprocess.run(
        [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "optuna"],
        check=True,
        capture_output=True,
    )
    yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/optuna"
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(folder, ignore_errors=True)
