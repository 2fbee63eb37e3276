"""The house's floors hold: the import contracts in pyproject.toml (layers that only point
down, domain and infrastructure apart, no plugin imported by losslab, no cycles), the config
groups at the top, and the plugins where Hydra looks for them."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

# the linter of this interpreter, so it reads the losslab this interpreter imports
LINT = [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"]


def test_every_import_contract_is_kept():
    proc = subprocess.run(LINT, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_the_config_groups_live_at_the_top_and_the_package_reaches_them():
    link = REPO / "src" / "losslab" / "conf"
    assert link.is_symlink() and link.resolve() == (REPO / "conf").resolve()
    import losslab.conf

    assert (Path(losslab.conf.__file__).parent / "train.yaml").is_file()
    groups = {p.parent.name for p in (REPO / "conf").rglob("*.yaml")}
    assert {"data", "model", "loss", "imbalance", "hparams_search", "launcher"} <= groups


def test_hydra_finds_the_plugins_where_losslab_is_installed():
    """Hydra lists the hydra_plugins namespace with pkgutil: an install that hides it (an
    editable finder instead of a path) loses the sweeper with no error but 'basic'."""
    import hydra_plugins

    found = {m.name for m in pkgutil.iter_modules(hydra_plugins.__path__)}
    assert {"losslab_optuna_sweeper", "losslab_slurm_launcher"} <= found


def test_a_broken_layer_is_caught(tmp_path):
    """The contract bites: a copy of the tree where the config imports the training code."""
    for name in ("src", "pyproject.toml"):
        source = REPO / name
        copy = shutil.copytree if source.is_dir() else shutil.copy2
        copy(source, tmp_path / name)
    checks = tmp_path / "src" / "losslab" / "config" / "checks.py"
    checks.write_text(checks.read_text() + "\nimport losslab.train  # noqa\n")
    env = {"PATH": "", "PYTHONPATH": str(tmp_path / "src")}
    proc = subprocess.run(
        LINT,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "losslab.config is not allowed to import losslab.train" in proc.stdout
