"""What a study is about, so that sweeps on other data, another objective or another search
space never continue it by accident.

A study's identity is its data selection, its objective with direction, and its search space
(the sweeper's ``params``, the sweep's command-line overrides and ``custom_search_space``).
The default study name ends in a short hash of it, so a changed sweep starts a study (and a
sweep folder) of its own; a study named explicitly stores its identity when created and is
refused to a sweep with another one unless ``hydra.sweeper.allow_changed_study=true``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from losslab.config import ConfigError
from losslab.search.settings import directions, space_lines
from losslab.tracking.redact import flatten, redact_text, redact_tree

IDENTITY_ATTR = "losslab.identity"


def identity(config: DictConfig) -> dict[str, Any]:
    """The parts of a composed sweep config that make its trials comparable, secrets masked
    (it is stored in the study, which any worker and Optuna Dashboard read): two sweeps that
    differ only in a password are the same sweep."""
    sweeper = config.hydra.sweeper
    space = {
        **space_lines(sweeper),
        "overrides": " ".join(sorted(str(o) for o in config.hydra.overrides.task)),
        "custom_search_space": sweeper.get("custom_search_space"),
    }
    data = OmegaConf.to_container(config.data, resolve=True, enum_to_str=True)
    return redact_tree(
        {
            "data": json.loads(_canonical(data)),
            "objective": _objective(config),
            "search_space": space,
        }
    )


def _objective(config: DictConfig) -> dict[str, Any]:
    """Name and direction; lists of them for several objectives."""
    name, direction = config.objective, config.direction
    if OmegaConf.is_list(name) or OmegaConf.is_list(direction):
        directions = [str(d) for d in direction] if OmegaConf.is_list(direction) else [direction]
        return {"name": objective_names(config), "direction": directions}
    return {"name": str(name), "direction": str(direction)}


def objective_names(config: DictConfig) -> list[str]:
    """``objective: val_pr_auc`` or ``objective: [val_pr_auc, val_loss]``, as a list."""
    name = config.objective
    return [str(n) for n in name] if OmegaConf.is_list(name) else [str(name)]


def location(config: DictConfig) -> tuple[str, str]:
    """Where the sweep's study lives: storage URL and study name, defaults included."""
    from losslab.search.storage import default_url

    sweeper = config.hydra.sweeper
    url = sweeper.get("storage") or default_url(config.hydra.sweep.dir)
    return url, sweeper.get("study_name") or Path(config.hydra.sweep.dir).name


def differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``data.n_minority: 100 -> 50`` for every leaf that differs."""
    before, after = flatten(stored), flatten(current)
    keys = sorted(set(before) | set(after))
    changed = [k for k in keys if before.get(k) != after.get(k)]
    return [f"{k}: {before.get(k)} -> {after.get(k)}" for k in changed]


def fingerprint(parts: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(parts).encode()).hexdigest()[:8]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def stored_identity(storage_url: str, study_name: str) -> dict[str, Any] | None:
    """The identity an existing study was made with; None when there is no such study (the
    storage is not created for the question)."""
    from losslab.search.storage import JOURNAL_PREFIX, open_storage

    for prefix in ("sqlite:///", JOURNAL_PREFIX):
        if storage_url.startswith(prefix) and not Path(storage_url[len(prefix) :]).exists():
            return None
    from sqlalchemy.exc import SQLAlchemyError

    try:
        storage = open_storage(storage_url)
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return None
    except SQLAlchemyError as err:  # the database is down, or refuses us: before any run
        why = str(getattr(err, "orig", None) or err).strip().splitlines() or [repr(err)]
        raise ConfigError(
            f"hydra.sweeper.storage={redact_text(storage_url)}: the study's database does not "
            f"answer ({why[0][:200]}); start it, or correct the URL"
        ) from None
    return storage.get_study_user_attrs(study_id).get(IDENTITY_ATTR, {})


def check_same(
    stored: dict[str, Any] | None, current: dict[str, Any], study_name: str, allow: bool
) -> None:
    """Refuse to continue a study made for other data, objective or search space."""
    if not stored or allow:
        return
    changed = differences(stored, current)
    if changed:
        raise ConfigError(
            f"hydra.sweeper.study_name={study_name}: that study was made for another sweep "
            f"({'; '.join(changed)}); name a new study, or set "
            "hydra.sweeper.allow_changed_study=true to add these trials to it"
        )


def preflight(config: DictConfig) -> None:
    """Checks of an Optuna sweep made before its parent run exists: the objective is not a
    test metric, and a named study that exists was made for the same sweep."""
    from losslab.objectives import check_sweepable

    for name in objective_names(config):
        check_sweepable(name)
    check_directions(config)
    url, name = location(config)
    allow = config.hydra.sweeper.get("allow_changed_study")
    check_same(stored_identity(url, name), identity(config), name, allow)


def check_directions(config: DictConfig) -> None:
    """One direction per objective, and the study's directions those of the objectives: a
    sweeper told to minimize what the jobs maximize would prune the best trials."""
    names = objective_names(config)
    wanted = directions(config.direction)
    if len(wanted) != len(names):
        raise ConfigError(
            f"direction={wanted} for objective={names}: give one direction per objective"
        )
    swept = directions(config.hydra.sweeper.get("direction", wanted))
    if swept != wanted:
        raise ConfigError(
            f"hydra.sweeper.direction={swept} but direction={wanted} for objective={names}; "
            "set hydra.sweeper.direction='${direction}'"
        )


def resolve_fingerprint(*, _root_: DictConfig) -> str:
    """``${losslab_study_id:}`` in a config: the fingerprint of the sweep it is part of."""
    return fingerprint(identity(_root_))


def is_optuna_sweep(config: DictConfig) -> bool:
    target = str(config.hydra.sweeper.get("_target_", ""))
    return target.startswith("hydra_plugins.losslab_optuna_sweeper.")
