"""Optional extras: what ``pip install losslab`` leaves out, and the pip line that adds it.

A launcher plugin that is not installed shows in Hydra either as a config it cannot find
(``hydra/launcher=joblib``, or ``local_parallel`` and ``slurm_gpu``, whose defaults name the
plugins' own configs) or, for a launcher config written out in full (``submitit_local``), as
a class it cannot load once the sweep has opened its parent run. Both are told here, before
any data is loaded or run recorded, as the launcher, the missing distribution and
``pip install 'losslab[launchers]'``. A database driver that is missing (a PostgreSQL
storage for a study, or tracking store) is told the same way, with
``pip install 'losslab[postgres]'``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from losslab.config.checks import ConfigError

LAUNCHERS_EXTRA = "pip install 'losslab[launchers]'"
POSTGRES_EXTRA = "pip install 'losslab[postgres]'"
LAUNCHER_GROUP = "hydra/launcher"
# each plugin's module and the distribution that installs it
PLUGINS = {
    "hydra_plugins.hydra_joblib_launcher": "hydra-joblib-launcher",
    "hydra_plugins.hydra_submitit_launcher": "hydra-submitit-launcher",
}
# the plugins' own options of hydra/launcher, there only when the plugin is installed
PLUGIN_OPTIONS = {
    "joblib": "hydra_plugins.hydra_joblib_launcher",
    "submitit_local": "hydra_plugins.hydra_submitit_launcher",
    "submitit_slurm": "hydra_plugins.hydra_submitit_launcher",
}


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def missing_launcher(choice: str, module: str) -> ConfigError:
    return ConfigError(
        f"{LAUNCHER_GROUP}={choice}: the launcher plugin {PLUGINS[module]} is not installed; "
        f"{LAUNCHERS_EXTRA}"
    )


def _chosen(args: Sequence[str], default: str) -> str:
    """The launcher the command line chose (the last choice wins), else ``default``."""
    prefix = f"{LAUNCHER_GROUP}="
    chosen = [a[len(prefix) :] for a in args if a.startswith(prefix)]
    return chosen[-1] if chosen else default


def missing_launcher_config(err: BaseException, args: Sequence[str]) -> ConfigError | None:
    """``err`` told as a missing launcher plugin, when it is Hydra's missing config of one;
    ``args``: the command line, for the launcher as the user named it."""
    missing = getattr(err, "missing_cfg_file", None) or ""
    group, _, option = missing.rpartition("/")
    module = PLUGIN_OPTIONS.get(option)
    if group != LAUNCHER_GROUP or module is None or installed(module):
        return None
    return missing_launcher(_chosen(args, option), module)


def check_launcher(choice: str, target: str) -> None:
    """The launcher config ``choice`` (class ``target``) can be loaded."""
    module = next((m for m in PLUGINS if target.startswith(f"{m}.")), None)
    if module is not None and not installed(module):
        raise missing_launcher(choice, module)


def missing_driver(url: str, err: ImportError) -> str:
    """What to say when the database driver of ``url`` cannot be imported."""
    how = POSTGRES_EXTRA if url.startswith("postgres") else "install it"
    return f"the driver of {url.split('://')[0]}:// is missing ({err.name}); {how}"
