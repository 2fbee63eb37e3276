"""What several test modules share: data locations, composing and running the app, a real
MLflow server, and readers of what a run or sweep recorded."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from losslab.tracking.spill import SPILL_DIR

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MNIST_DIR = SHARED / "data" / "mnist"
CREDITCARD = SHARED / "data" / "creditcard" / "creditcard.csv.gz"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
POSTGRES_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))

# What a test needs that a fresh machine may lack; .ci/run installs all of it, so CI skips none.
needs_mnist = pytest.mark.skipif(
    not MNIST_DIR.is_dir(), reason=f"the MNIST IDX files are not at {MNIST_DIR}"
)
needs_creditcard = pytest.mark.skipif(
    not CREDITCARD.is_file(), reason=f"the credit-card CSV is not at {CREDITCARD}"
)
needs_fashion = pytest.mark.skipif(
    not FASHION_DIR.is_dir(),
    reason="Fashion-MNIST is missing: apt-get install dataset-fashion-mnist",
)
needs_postgres = pytest.mark.skipif(
    not POSTGRES_BINS, reason="PostgreSQL is missing: apt-get install postgresql"
)
needs_chromium = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="Chromium is missing: apt-get install chromium chromium-driver",
)


def compose(tmp_path: Path, *overrides: str):
    """The config ``python train.py debug=default ...`` composes, folders under ``tmp_path``."""
    from losslab.composition import compose as compose_train

    return compose_train(["debug=default", *overrides], root=tmp_path)


# what conftest sets for the suite; MLflow's default environment has none of them
QUIET_ENV = ("MLFLOW_ENABLE_TELEMETRY", "DO_NOT_TRACK", "TF_CPP_MIN_LOG_LEVEL")


def run_cli(
    cwd: Path, *args: str, check: bool = True, timeout: int = 300, env=None, default_env=False
):
    """``python train.py ARGS`` in ``cwd``, as a user would start it; ``default_env``: without
    the variables the suite sets (MLflow's telemetry on, as on a user's machine)."""
    base = {k: v for k, v in os.environ.items() if not (default_env and k in QUIET_ENV)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def start_cli(cwd: Path, *args: str, env=None) -> subprocess.Popen:
    """``python train.py ARGS`` in ``cwd``, started and left running; its output in one pipe."""
    return subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


@functools.cache
def _empty_store() -> bytes:
    """An MLflow SQLite store with its tables made, as bytes: MLflow makes a new store's tables
    by running every schema migration, a second or more, where a copy takes a millisecond."""
    folder = Path(tempfile.mkdtemp(prefix="losslab-store-"))
    MlflowClient(f"sqlite:///{folder}/mlflow.db").search_experiments()
    data = (folder / "mlflow.db").read_bytes()
    shutil.rmtree(folder)
    return data


def new_store(folder: Path) -> str:
    """A new, empty MLflow store at ``folder/mlflow.db``, as MLflow makes it for a process
    started in ``folder`` (the default experiment's artifacts in ``folder/mlruns/0``); its URI."""
    db = folder / "mlflow.db"
    folder.mkdir(parents=True, exist_ok=True)
    db.write_bytes(_empty_store())
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        location = str(folder.resolve() / "mlruns" / "0")
        con.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", [location]
        )
    return f"sqlite:///{db}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1 that a test can stop and start again."""

    def __init__(self, folder: Path, port: int | None = None, backend: str | None = None) -> None:
        self.folder = folder
        self.backend = backend
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        import urllib.request

        if self.backend is None:  # a SQLite store in the folder: made at the first start
            db = self.folder / "mlflow.db"
            self.backend = f"sqlite:///{db}" if db.exists() else new_store(self.folder)

        log = open(self.folder / "server.log", "a")  # noqa: SIM115 - the server writes it
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--backend-store-uri",
                self.backend,
                "--artifacts-destination",
                str(self.folder / "artifacts"),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stop() ends the server with all its workers
            # without its job runner: seven Huey consumer processes for MLflow's GenAI jobs,
            # which no tracking call uses, took the start from about 7 s to 15-25 s of CPU
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
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

    def pause(self, resume: bool = False) -> None:
        """SIGSTOP the server (it accepts connections and never answers); SIGCONT with
        ``resume``."""
        import signal

        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT if resume else signal.SIGSTOP)

    def stop(self) -> None:
        import signal

        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
            os.killpg(self.proc.pid, signal.SIGCONT)  # a paused server ends too
        self.proc.wait(timeout=20)
        self.proc = None


def assert_nothing_recorded(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    if db.exists():
        client = MlflowClient(f"sqlite:///{db}")
        experiments = [e.experiment_id for e in client.search_experiments()]
        assert client.search_runs(experiments) == []
    assert not (tmp_path / "out" / SPILL_DIR).exists()


STUDY = "losslab-digits_9v3"
# named, so a test finds its study; by default the name ends in the sweep's fingerprint
SWEEP = [
    "-m",
    "hparams_search=optuna",
    "debug=default",
    "trainer.epochs=2",
    "trainer.threads=1",
    f"hydra.sweeper.study_name={STUDY}",
]
# a search where only lr=1e-9 falls behind: digits 9 vs 4 are separable, so lr=0.01 always
# learns; the median pruner judges from the first completed trial and the first epoch on
# (val_roc_auc, not val_loss: validation holds more of the minority than training, by its floor,
# so an early epoch's loss can be worse than that of an untrained model)
HOPELESS_LR = [
    "data=digits_9v4",
    "optimizer.lr=choice(0.01,1e-9)",
    "model.dropout=0.0",
    "imbalance.ratio=1.0",
    "objective=val_roc_auc",
    "hydra.sweeper.pruner.n_startup_trials=1",
    "hydra.sweeper.pruner.n_warmup_steps=0",
    # every trial a random draw: TPE past its start-up would stop drawing the hopeless lr,
    # and the pruner needs some drawn after a completed trial
    "hydra.sweeper.sampler.n_startup_trials=10",
]


def load_study(storage: str, name: str = STUDY) -> optuna.Study:
    from losslab.search.storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(storage))


def runs_by_type(tmp_path: Path) -> tuple[list, list]:
    return sweeps_and_jobs(MlflowClient(f"sqlite:///{tmp_path}/mlflow.db"))


def sweeps_and_jobs(client: MlflowClient, experiment: str | None = None) -> tuple[list, list]:
    """The sweeps' parent runs and their jobs' runs, in ``experiment`` or in all of them."""
    if experiment is None:
        ids = [e.experiment_id for e in client.search_experiments()]
    else:
        ids = [client.get_experiment_by_name(experiment).experiment_id]
    runs = client.search_runs(ids, max_results=1000)
    sweeps = [r for r in runs if r.data.tags.get("losslab.run_type") == "sweep"]
    jobs = [r for r in runs if r.data.tags.get("losslab.run_type") == "job"]
    return sweeps, jobs


class FlakyProxy:
    """An HTTP proxy on 127.0.0.1 in front of a server: forwards every request, or answers
    503 to all of them (``failing = True``), as a load balancer does when its backend is down."""

    def __init__(self, target: str) -> None:
        import http.server
        import threading

        import requests

        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                if proxy.failing:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                answer = requests.request(
                    self.command,
                    target + self.path,
                    data=self.rfile.read(length) if length else None,
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                    timeout=60,
                )
                self.send_response(answer.status_code)
                for key in ("Content-Type",):
                    if key in answer.headers:
                        self.send_header(key, answer.headers[key])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

            def log_message(self, *args) -> None:  # quiet
                pass

        self.failing = False
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def postgres_server(database: str = "optuna", max_connections: int = 100) -> Iterator[str]:
    """A real PostgreSQL server (Debian package) on 127.0.0.1 with an empty ``database``; its
    SQLAlchemy URL. PostgreSQL refuses to run as root: under root it runs as ``postgres``."""
    bindir = POSTGRES_BINS[-1].parent
    folder = Path(tempfile.mkdtemp(prefix="losslab-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    subprocess.run([*as_user, *initdb, "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
    port = free_port()
    log = open(folder / "server.log", "w")  # noqa: SIM115 - written until the server stops
    server = [str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port)]
    server += ["-c", f"max_connections={max_connections}"]
    proc = subprocess.Popen(
        [*as_user, *server, "-k", str(folder), "-F"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_for_postgres(bindir, port, proc, folder / "server.log")
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
            + [database],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_postgres(bindir: Path, port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        ready = subprocess.run(
            [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
        )
        if ready.returncode == 0:
            return
        if proc.poll() is not None:
            raise RuntimeError(log.read_text())
        time.sleep(0.3)
    raise RuntimeError("PostgreSQL did not start:\n" + log.read_text())


# Hydra's logging left as the test set it (pytest's caplog sees the sweeper's lines)
LOGGING_LEFT_ALONE = ("hydra/job_logging=none", "hydra/hydra_logging=none")


def sweep_toy_app(folder: Path, *overrides: str) -> None:
    """``python tests/apps/sphere.py -m hydra.sweep.dir=FOLDER OVERRIDES``, in this process
    (Hydra's own multirun with the app's task function: the sweeper, its launcher and its
    study as the command runs them, without a Python start). Its study is named after the
    folder."""
    from hydra._internal.hydra import Hydra
    from hydra.core.global_hydra import GlobalHydra

    from tests.apps import sphere

    hydra_app = Hydra.create_main_hydra_file_or_module(
        calling_file=sphere.__file__, calling_module=None, config_path="conf", job_name="sphere"
    )
    try:
        hydra_app.multirun(
            config_name="sphere",
            task_function=sphere.main.__wrapped__,
            overrides=[f"hydra.sweep.dir={folder}", *LOGGING_LEFT_ALONE, *overrides],
            with_log_configuration=False,
        )
    finally:
        GlobalHydra().clear()
