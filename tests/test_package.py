"""losslab as a user installs it: a wheel, not the checkout.

The wheel is built from the repository's build inputs and installed, without its
dependencies, into a fresh virtual environment that takes them from the system site
(installing TensorFlow afresh is too slow for CI). Commands run in an empty folder with no
``PYTHONPATH`` and no ``MLFLOW_TRACKING_URI``, so nothing of the checkout can stand in for
what the wheel holds: the config groups, the sweeper plugin, the ``losslab`` command.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.helpers import REPO

pytestmark = pytest.mark.slow

# what `pip wheel` reads; copied, as the build writes build/ and *.egg-info beside them and a
# stale build/lib would put modules deleted since into the wheel
BUILD_INPUTS = ("pyproject.toml", "README.md", "src", "conf")
NOT_BUILD_INPUTS = shutil.ignore_patterns("__pycache__", "*.egg-info")


@dataclass
class Installed:
    venv: Path
    wheel: Path
    build_s: float

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


def _run(*args: str | Path, cwd: Path | None = None, env=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"{args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def build_wheel(root: Path) -> tuple[Path, float]:
    source = root / "source"
    for name in BUILD_INPUTS:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=NOT_BUILD_INPUTS)
        else:
            shutil.copy2(path, source / name)
    started = time.perf_counter()
    pip_wheel = ["-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", root / "dist"]
    _run(sys.executable, *pip_wheel, source)
    (wheel,) = (root / "dist").glob("losslab-*.whl")
    return wheel, time.perf_counter() - started


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    """losslab's wheel in a fresh venv over the system site's dependencies."""
    root = tmp_path_factory.mktemp("package")
    (root / "source").mkdir()
    wheel, build_s = build_wheel(root)
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--system-site-packages", venv)
    # --ignore-installed: a losslab in the system site (an editable install) stays as it is
    pip = ["-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", wheel]
    _run(venv / "bin" / "python", *pip, env=user_env())
    return Installed(venv, wheel, build_s)


def user_env() -> dict[str, str]:
    """This environment without what points into the checkout or at a tracking store."""
    dropped = ("PYTHONPATH", "MLFLOW_TRACKING_URI", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if k not in dropped}


def _runs(folder: Path) -> tuple[MlflowClient, list]:
    """The client of ``folder/mlflow.db`` and every run in it."""
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    return client, client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_installed_command(installed, tmp_path):
    env = user_env()
    for module in ("losslab", "hydra_plugins.losslab_optuna_sweeper"):
        code = f"import {module} as m; print(m.__file__)"
        found = _run(installed.bin / "python", "-c", code, cwd=tmp_path, env=env).stdout.strip()
        assert Path(found).is_relative_to(installed.venv), (module, found)

    _run(installed.bin / "losslab", "train", "trainer.epochs=1", cwd=tmp_path, env=env)
    client, runs = _runs(tmp_path)
    (run,) = runs
    assert run.info.status == "FINISHED"
    assert run.data.tags["losslab.job_name"] == "train"
    assert {"test_pr_auc", "val_pr_auc", "loss"} <= set(run.data.metrics)
    config = [a.path for a in client.list_artifacts(run.info.run_id, "config")]
    assert "config/config.yaml" in config

    job = _run(installed.bin / "losslab", "train", "--cfg", "job", cwd=tmp_path, env=env)
    checkout = _run(sys.executable, REPO / "train.py", "--cfg", "job", cwd=tmp_path)
    assert job.stdout == checkout.stdout and job.stdout.startswith("data:\n")

    usage = _run(installed.bin / "losslab", "--help", cwd=tmp_path, env=env).stdout
    assert all(f"\n  {name} " in usage for name in ("train", "sweep", "compare", "replay"))
    replay = _run(installed.bin / "losslab-replay", "--help", cwd=tmp_path, env=env).stdout
    assert replay.startswith("usage: losslab-replay")
    print(f"wheel built in {installed.build_s:.1f} s ({installed.wheel.stat().st_size} bytes)")


CALLBACK_SCRIPT = """
import mlflow, numpy as np, keras
from losslab.keras import MlflowLogger

mlflow.set_tracking_uri("sqlite:///mlflow.db")
rng = np.random.default_rng(0)
x = rng.normal(size=({n}, 4)).astype("float32")
y = (x[:, 0] > 0).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy")
model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, callbacks=[MlflowLogger()])
"""


def test_installed_callback(installed, tmp_path):
    """A plain Keras script records through the installed package's callback."""
    n = 64
    (tmp_path / "fit.py").write_text(CALLBACK_SCRIPT.format(n=n))
    _run(installed.bin / "python", "fit.py", cwd=tmp_path, env=user_env())
    client, runs = _runs(tmp_path)
    (run,) = runs
    assert run.info.status == "FINISHED"
    batches = client.get_metric_history(run.info.run_id, "batch/loss")
    assert len(batches) == math.ceil(n * 0.75 / 16) * 2
    for name in ("loss", "val_loss"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, name)]
        assert sorted(steps) == [0, 1], name
