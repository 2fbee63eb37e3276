"""Shared fixtures: composed configs, real data locations, a real MLflow server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
os.environ.setdefault("DO_NOT_TRACK", "true")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MNIST_DIR = SHARED / "data" / "mnist"
CREDITCARD = SHARED / "data" / "creditcard" / "creditcard.csv.gz"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def compose(tmp_path: Path, *overrides: str):
    """The config ``python train.py debug=default ...`` composes, folders under ``tmp_path``."""
    from losslab.config import compose as compose_train

    return compose_train(["debug=default", *overrides], root=tmp_path)


def run_cli(cwd: Path, *args: str, check: bool = True, timeout: int = 300, env=None):
    """``python train.py ARGS`` in ``cwd``, as a user would start it."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1 that a test can stop and start again."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        import urllib.request

        log = open(self.folder / "server.log", "a")  # noqa: SIM115 - the server writes it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
             "--port", str(self.port), "--backend-store-uri", f"sqlite:///{self.folder}/mlflow.db",
             "--artifacts-destination", str(self.folder / "artifacts"), "--workers", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stop() ends the server with all its workers
        )  # fmt: skip
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return self.url
            except OSError:
                time.sleep(0.5)
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(
            "mlflow server did not start:\n" + (self.folder / "server.log").read_text()
        )

    def stop(self) -> None:
        import signal

        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=20)
        self.proc = None


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on 127.0.0.1, stopped after the session."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    yield server.start()
    server.stop()


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
    return found[-1].parent


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
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
         "--no-sync", "-E", "UTF8"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    log = open(folder / "server.log", "w")  # noqa: SIM115 - written until the server stops
    proc = subprocess.Popen(
        [*as_user, str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
         "-k", str(folder), "-F"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
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
        check=True, capture_output=True,
    )  # fmt: skip
    yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/optuna"
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(folder, ignore_errors=True)
