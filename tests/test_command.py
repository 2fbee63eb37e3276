"""The ``losslab`` command: its subcommands, its answers to a wrong one, what it imports for
``--help`` and ``--cfg job``, and the pip line for a launcher plugin that is not installed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import MissingConfigException

from losslab import command, extras, unattended
from losslab.config import ConfigError
from tests.helpers import REPO, run_cli

COMMANDS = ("train", "sweep", "compare", "replay")
HEAVY = ("mlflow", "sklearn", "optuna", "tensorflow", "keras")


def test_help_lists_the_commands(capsys):
    assert command.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: losslab COMMAND")
    for name in COMMANDS:
        assert re.search(rf"^  {name} ", out, re.MULTILINE), name


@pytest.mark.parametrize("argv", [["trian"], ["-m", "loss=focal"], []])
def test_an_unknown_or_missing_command_is_one_line_and_exit_code_2(capsys, argv):
    assert command.main(argv) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert not captured.out
    assert line.startswith("error: losslab ")
    assert all(name in line for name in COMMANDS)
    if argv:
        assert f"losslab {argv[0]}: no such command" in line


def test_sweep_is_an_optuna_multirun_with_what_the_data_asks_for(monkeypatch):
    given: list[list[str]] = []
    monkeypatch.setattr(command, "train", lambda args: given.append(list(args)) or 0)
    command.sweep(["loss=focal"])  # the default digits: images, 20 3s -> 2 folds of 10
    command.sweep(["hparams_search=optuna_remedies", "model=mlp", "data.folds=1"])  # given wins
    command.sweep(["data=mnist_9v4"])  # 100 4s: 3 folds (the headline protocol)
    command.sweep(["data=creditcard"])  # a table, every fraud: nothing picked
    command.sweep(["--cfg", "job"])  # Hydra takes one mode: print, don't run
    preset = "hparams_search=unattended"
    assert given == [
        ["-m", preset, "model=cnn", "data.folds=2", "loss=focal"],
        ["-m", preset, "hparams_search=optuna_remedies", "model=mlp", "data.folds=1"],
        ["-m", preset, "model=cnn", "data.folds=3", "data=mnist_9v4"],
        ["-m", preset, "data=creditcard"],
        [preset, "model=cnn", "data.folds=2", "--cfg", "job"],
    ]


@pytest.mark.parametrize("n_minority", [1, 5, 19, 20, 29, 30, 31, 100, 1000])
@pytest.mark.parametrize("floor", [1, 10, 25])
def test_the_picked_folds_each_hold_the_floor(n_minority, floor):
    """Stratified folds of n minority samples: each validation part holds n // k or more,
    each training part n - ceil(n / k); one split when two folds would break the floor."""
    k = unattended.folds_for(n_minority, floor)
    assert 1 <= k <= unattended.MAX_FOLDS
    if k > 1:
        assert n_minority // k >= floor and n_minority - -(-n_minority // k) >= floor
    else:
        assert n_minority // 2 < floor or n_minority - -(-n_minority // 2) < floor


@pytest.mark.parametrize("name", ["compare", "replay"])
def test_compare_and_replay_name_themselves(capsys, name):
    with pytest.raises(SystemExit) as end:
        command.main([name, "--help"])
    assert end.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: losslab {name} ")


def test_compare_with_nothing_to_compare_is_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from mlflow import MlflowClient

    MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").create_experiment("other")
    assert command.main(["compare", "--experiment", "nope", "--no-log"]) == 2
    assert "nope" in capsys.readouterr().err


def test_a_launcher_whose_plugin_is_missing_names_the_pip_line(monkeypatch):
    monkeypatch.setitem(extras.PLUGINS, "hydra_plugins.not_here", "hydra-not-here-launcher")
    monkeypatch.setitem(extras.PLUGIN_OPTIONS, "not_here", "hydra_plugins.not_here")
    with pytest.raises(ConfigError) as err:
        extras.check_launcher("mine", "hydra_plugins.not_here.launcher.Launcher")
    assert str(err.value) == (
        "hydra/launcher=mine: the launcher plugin hydra-not-here-launcher is not installed; "
        "pip install 'losslab[launchers]'"
    )
    missing = MissingConfigException("...", missing_cfg_file="hydra/launcher/not_here")
    told = extras.missing_launcher_config(missing, ["-m", "hydra/launcher=parallel"])
    assert str(told).startswith("hydra/launcher=parallel: the launcher plugin hydra-not-here")
    assert extras.missing_launcher_config(missing, []).args[0].startswith("hydra/launcher=not_here")


def test_a_missing_driver_names_its_extra():
    err = ModuleNotFoundError("No module named 'psycopg'", name="psycopg")
    told = extras.missing_driver("postgresql+psycopg://u:pw@db/x", err)
    assert told == "the driver of postgresql+psycopg:// is missing (psycopg); " + (
        "pip install 'losslab[postgres]'"
    )
    err = ModuleNotFoundError("No module named 'MySQLdb'", name="MySQLdb")
    assert extras.missing_driver("mysql://u@h/x", err).endswith("(MySQLdb); install it")


def test_installed_launchers_and_other_missing_configs_pass():
    extras.check_launcher(
        "submitit_local", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
    )
    extras.check_launcher("basic", "hydra._internal.core_plugins.basic_launcher.BasicLauncher")
    for missing in ("hydra/launcher/joblib", "loss/nope", "hydra/launcher/mine"):
        err = MissingConfigException("...", missing_cfg_file=missing)
        assert extras.missing_launcher_config(err, []) is None


def imported(*args: str, cwd: Path) -> tuple[str, set[str]]:
    """``python ARGS``'s output and the top-level packages it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = re.findall(r"^import time:[^|]+\|[^|]+\|\s*([\w.]+)", proc.stderr, re.MULTILINE)
    return proc.stdout, {name.split(".")[0] for name in names}


@pytest.mark.slow
@pytest.mark.parametrize("mode", [["--cfg", "job"], ["--help"]])
def test_help_and_cfg_job_answer_alike_without_heavy_imports(tmp_path, mode):
    script, script_imports = imported(str(REPO / "train.py"), *mode, cwd=tmp_path)
    cmd, cmd_imports = imported("-m", "losslab", "train", *mode, cwd=tmp_path)
    assert cmd == script and "data:" in cmd
    assert "losslab" in cmd_imports and "hydra" in cmd_imports
    assert not (script_imports | cmd_imports) & set(HEAVY)


HIDE_MODULES = '''
"""Hides the modules named in $LOSSLAB_HIDDEN, as if they were not installed: their imports
fail, and Hydra's plugin scan (pkgutil) does not see them."""
import os, pkgutil, sys
from importlib.abc import MetaPathFinder

HIDDEN = tuple(os.environ["LOSSLAB_HIDDEN"].split(","))


class Hidden(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith(HIDDEN):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, Hidden())
_iter_modules = pkgutil.iter_modules
pkgutil.iter_modules = lambda path=None, prefix="": (
    m for m in _iter_modules(path, prefix) if not m.name.startswith(HIDDEN)
)
'''
LAUNCHERS = {
    "joblib": "hydra-joblib-launcher",
    "local_parallel": "hydra-joblib-launcher",
    "submitit_local": "hydra-submitit-launcher",
    "slurm_gpu": "hydra-submitit-launcher",
}


def without(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment in which ``modules`` are not installed."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(HIDE_MODULES)
    path = os.pathsep.join(p for p in (str(shim), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "LOSSLAB_HIDDEN": ",".join(modules)}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_launcher_that_is_not_installed_is_refused_before_any_run(tmp_path, launcher):
    args = ["-m", f"hydra/launcher={launcher}", "debug=default"]
    proc = run_cli(tmp_path, *args, check=False, env=without(tmp_path, *extras.PLUGINS))
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line == (
        f"error: hydra/launcher={launcher}: the launcher plugin {LAUNCHERS[launcher]} is not "
        "installed; pip install 'losslab[launchers]'"
    )
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_the_sweep_command_refuses_a_missing_launcher_too(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "losslab", "sweep", "hydra/launcher=submitit_local"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **without(tmp_path, *extras.PLUGINS)},
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert "hydra-submitit-launcher is not installed; pip install 'losslab[launchers]'" in line
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, key",
    [
        (["tracking.uri=postgresql+psycopg://u@127.0.0.1:5719/db"], "tracking.uri"),
        (
            ["-m", "hparams_search=optuna", "hydra.sweeper.storage=postgresql+psycopg://u@h/db"],
            "hydra.sweeper.storage",
        ),
    ],
    ids=["tracking store", "study storage"],
)
def test_a_missing_postgres_driver_names_the_pip_line(tmp_path, overrides, key):
    proc = run_cli(tmp_path, *overrides, check=False, env=without(tmp_path, "psycopg"))
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"error: {key}")
    assert "the driver of postgresql+psycopg:// is missing (psycopg); pip install " in line
    assert "'losslab[postgres]'" in line
    assert not (tmp_path / "mlflow.db").exists()
