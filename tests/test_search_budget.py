"""A search that can learn within its budget: TPE's random start-up scaled to the trials, and
search spaces that weight the minority once per trial (in-process, in-memory studies)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml
from omegaconf import OmegaConf

from hydra_plugins.losslab_optuna_sweeper import samplers
from hydra_plugins.losslab_optuna_sweeper.config import TPESamplerConf
from losslab.search import spaces
from tests.helpers import compose

PRESETS = sorted((Path(__file__).parents[1] / "conf" / "hparams_search").glob("*.yaml"))


def minority_weights(params: dict, fixed: dict) -> list[str]:
    """What weights the minority in one trial: the remedy, the loss's positive weight, the
    focal loss's class balancing (its alpha)."""
    remedy = params.get("imbalance", fixed.get("imbalance", "none"))
    loss = params.get("loss", fixed.get("loss", "bce"))
    weights = [remedy] if remedy in (*spaces.WEIGHTING, "balanced") else []
    if loss == "weighted_bce" and float(fixed.get("loss.kwargs.pos_weight", 10.0)) != 1.0:
        weights.append("pos_weight")
    if loss == "focal" and fixed.get("loss.kwargs.apply_class_balancing", True):
        weights.append("focal alpha")
    return weights


@pytest.mark.parametrize("source", ["mnist", "digits_pair", "tabular"])
def test_the_remedies_space_weights_the_minority_once_per_trial(source):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    config = SimpleNamespace(data=SimpleNamespace(source=source))
    seen = set()
    for _ in range(300):
        trial = study.ask()
        fixed = spaces.remedies(config, trial)
        weights = minority_weights(trial.params, fixed)
        assert len(weights) <= 1, (trial.params, fixed)
        seen.update(weights)
        study.tell(trial, 0.0)
    assert {"class_weight", "oversample", "pos_weight", "focal alpha"} <= seen  # all reachable


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_no_preset_stacks_two_minority_weights(tmp_path, preset):
    cfg = compose(tmp_path, f"hparams_search={preset.stem}")
    swept = yaml.safe_load(preset.read_text())["hydra"]["sweeper"].get("params") or {}
    strategy = cfg.imbalance.strategy
    fixed = {"imbalance": getattr(strategy, "name", str(strategy)), "loss": cfg.loss.name}
    fixed.update(
        {f"loss.kwargs.{k}": v for k, v in OmegaConf.to_container(cfg.loss.kwargs).items()}
    )
    weights = minority_weights({}, fixed)
    weights += [k for k in swept if k in ("loss.kwargs.pos_weight", "loss.kwargs.alpha")]
    assert len(set(weights)) <= 1, (preset.stem, weights)


@pytest.mark.parametrize(("n_trials", "startup"), [(4, 2), (12, 3), (24, 6), (100, 10), (None, 10)])
def test_tpe_start_up_trials_are_a_quarter_of_the_budget(n_trials, startup):
    node = OmegaConf.structured(TPESamplerConf)
    sampler = samplers.build_sampler(node, {}, 0, n_trials)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._n_startup_trials == startup


def test_a_given_start_up_count_is_kept():
    node = OmegaConf.merge(OmegaConf.structured(TPESamplerConf), {"n_startup_trials": 7})
    assert samplers.build_sampler(node, {}, 0, 12)._n_startup_trials == 7
