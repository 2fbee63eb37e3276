"""The house's floors hold: the import contracts in pyproject.toml (layers that only point
down, domain and infrastructure apart, no plugin imported by losslab, no cycles), and the
package list that ships every module and the config groups."""

from __future__ import annotations

import shutil
import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python 3.10: pytest's own TOML reader
    import tomli as tomllib

from tests.helpers import REPO


def test_every_import_contract_is_kept():
    lint = shutil.which("lint-imports")
    assert lint, "pip install import-linter (in the test extra)"
    proc = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_the_wheel_lists_every_package_and_the_config_groups():
    setup = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(path.parent.relative_to(REPO / "src").parts)
        for path in (REPO / "src").rglob("__init__.py")
        if "egg-info" not in str(path)
    }
    assert on_disk | {"losslab.conf"} == set(setup["packages"])
    assert setup["package-dir"]["losslab.conf"] == "conf"
    groups = {p.parent.name for p in (REPO / "conf").rglob("*.yaml")}
    assert {"data", "model", "loss", "imbalance", "hparams_search", "launcher"} <= groups


def test_a_broken_layer_is_caught(tmp_path):
    """The contract bites: a copy of the tree where the config imports the training code."""
    lint = shutil.which("lint-imports")
    assert lint, "pip install import-linter (in the test extra)"
    for name in ("src", "pyproject.toml"):
        source = REPO / name
        copy = shutil.copytree if source.is_dir() else shutil.copy2
        copy(source, tmp_path / name)
    checks = tmp_path / "src" / "losslab" / "config" / "checks.py"
    checks.write_text(checks.read_text() + "\nimport losslab.train  # noqa\n")
    env = {"PATH": "", "PYTHONPATH": str(tmp_path / "src")}
    proc = subprocess.run(
        [sys.executable, lint],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "losslab.config is not allowed to import losslab.train" in proc.stdout
