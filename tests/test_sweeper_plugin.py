"""The sweeper's samplers and pruners: every one Optuna 5 ships, under the names of the
published hydra-optuna-sweeper, each constructor argument a typed key set without ``+``;
composed and built in-process, then run for real through the toy app."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import itertools
import os
import subprocess
import sys
import warnings
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hydra_plugins.losslab_optuna_sweeper import config, samplers
from tests.helpers import REPO, load_study, sweep_toy_app

NO_TORCH = importlib.util.find_spec("torch") is None

APP = REPO / "tests" / "apps"
S, P = optuna.samplers, optuna.pruners
GRID_SPACE = {"x": CategoricalDistribution([-1.0, 0.0, 1.0]), "y": IntDistribution(0, 1)}


def hydra_sweeper(*overrides: str):
    """``hydra.sweeper`` as the toy app composes it with ``overrides``."""
    with initialize_config_dir(config_dir=str(APP / "conf"), version_base=None):
        return compose("sphere", list(overrides), return_hydra_config=True).hydra.sweeper


def built_sampler(name: str, *overrides: str, n_existing: int = 0):
    node = hydra_sweeper(f"hydra/sweeper/sampler={name}", *overrides).sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return samplers.build_sampler(node, GRID_SPACE, n_existing)


# -- the schema --------------------------------------------------------------------------
OPTUNA_CLASSES = {
    "tpe": S.TPESampler,
    "motpe": S.TPESampler,
    "random": S.RandomSampler,
    "cmaes": S.CmaEsSampler,
    "nsgaii": S.NSGAIISampler,
    "nsgaiii": S.NSGAIIISampler,
    "qmc": S.QMCSampler,
    "gp": S.GPSampler,
    "grid": S.GridSampler,
    "bruteforce": S.BruteForceSampler,
    "median": P.MedianPruner,
    "percentile": P.PercentilePruner,
    "successive_halving": P.SuccessiveHalvingPruner,
    "hyperband": P.HyperbandPruner,
    "threshold": P.ThresholdPruner,
    "wilcoxon": P.WilcoxonPruner,
    "patient": P.PatientPruner,
    "none": P.NopPruner,
}


@pytest.mark.parametrize(("name", "cls"), OPTUNA_CLASSES.items())
def test_every_constructor_argument_of_optuna_is_a_key(name, cls):
    """An Optuna upgrade that adds or drops an argument fails here, not in a user's sweep."""
    node = {**config.SAMPLERS, **config.PRUNERS}[name]
    keys = {f.name for f in dataclasses.fields(node)} - {"_target_", "_partial_"}
    arguments = {
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "search_space"
    }
    assert keys - {"n_ehvi_candidates"} == arguments


def test_the_published_plugins_names_are_all_registered():
    published = {"tpe", "random", "cmaes", "nsgaii", "motpe", "grid", "gp", "qmc"}
    assert published <= set(config.SAMPLERS)
    assert set(OPTUNA_CLASSES) == set(config.SAMPLERS) | set(config.PRUNERS)


# -- samplers ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "override", "cls", "check"),
    [
        ("tpe", "n_ei_candidates=30", S.TPESampler, lambda s: s._n_ei_candidates == 30),
        ("motpe", "n_ehvi_candidates=30", S.TPESampler, lambda s: s._n_ei_candidates == 30),
        (
            "random",
            "seed=7",
            S.RandomSampler,
            lambda s: s._rng.rng.random() == S.RandomSampler(seed=7)._rng.rng.random(),
        ),
        ("cmaes", "popsize=8", S.CmaEsSampler, lambda s: s._popsize == 8),
        (
            "cmaes",
            "independent_sampler={_target_:optuna.samplers.QMCSampler,seed:1}",
            S.CmaEsSampler,
            lambda s: isinstance(s._independent_sampler, S.QMCSampler),
        ),
        ("nsgaii", "population_size=8", S.NSGAIISampler, lambda s: s._population_size == 8),
        ("nsgaiii", "population_size=8", S.NSGAIIISampler, lambda s: s._population_size == 8),
        ("qmc", "qmc_type=halton", S.QMCSampler, lambda s: s._qmc_type == "halton"),
        ("gp", "deterministic_objective=true", S.GPSampler, lambda s: s._deterministic),
        (
            "grid",
            "seed=3",
            S.GridSampler,
            lambda s: s._all_grids == S.GridSampler(samplers.grid_values(GRID_SPACE), 3)._all_grids,
        ),
        (
            "bruteforce",
            "avoid_premature_stop=true",
            S.BruteForceSampler,
            lambda s: s._avoid_premature_stop,
        ),
    ],
)
def test_each_sampler_is_built_with_a_key_set_without_plus(name, override, cls, check):
    sampler = built_sampler(name, f"hydra.sweeper.sampler.{override}")
    assert isinstance(sampler, cls)
    assert check(sampler)


def test_a_misspelt_sampler_key_is_refused_when_composing():
    with pytest.raises(ConfigCompositionException, match="n_ei_candidate"):
        hydra_sweeper("hydra/sweeper/sampler=tpe", "hydra.sweeper.sampler.n_ei_candidate=30")


def test_a_resumed_grid_keeps_its_seed_and_order():
    """Trial n takes point n of the shuffled grid: a derived seed would repeat and skip."""
    fresh, resumed = built_sampler("grid"), built_sampler("grid", n_existing=4)
    assert fresh._all_grids == resumed._all_grids
    assert samplers.grid_size(fresh) == 6
    assert samplers.grid_size(built_sampler("tpe")) is None


@pytest.mark.parametrize(
    ("distribution", "values"),
    [
        (CategoricalDistribution(["bce", "focal"]), ["bce", "focal"]),
        (IntDistribution(16, 64, step=16), [16, 32, 48, 64]),
        (IntDistribution(1, 4, log=True), [1, 2, 3, 4]),
        (FloatDistribution(0.0, 0.3, step=0.1), [0.0, 0.1, 0.2, 0.3]),
        (FloatDistribution(0.5, 2.0, step=0.5), [0.5, 1.0, 1.5, 2.0]),
    ],
)
def test_grid_values_are_every_step_from_low_to_high(distribution, values):
    assert samplers.grid_values({"key": distribution}) == {"key": values}


@pytest.mark.parametrize(
    "distribution", [FloatDistribution(0.0, 1.0), FloatDistribution(1e-5, 1e-1, log=True)]
)
def test_a_grid_over_a_continuous_interval_is_refused_with_the_key(distribution):
    with pytest.raises(ValueError, match=r"model\.dropout: the grid sampler needs .*choice"):
        samplers.grid_values({"x": CategoricalDistribution([1]), "model.dropout": distribution})


# -- pruners -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "overrides", "cls", "check"),
    [
        ("median", ["n_warmup_steps=3"], P.MedianPruner, lambda p: p._n_warmup_steps == 3),
        ("percentile", ["percentile=25"], P.PercentilePruner, lambda p: p._percentile == 25),
        (
            "successive_halving",
            ["reduction_factor=2"],
            P.SuccessiveHalvingPruner,
            lambda p: p._reduction_factor == 2,
        ),
        (
            "hyperband",
            ["reduction_factor=2"],
            P.HyperbandPruner,
            lambda p: p._reduction_factor == 2,
        ),
        ("threshold", ["upper=10"], P.ThresholdPruner, lambda p: p._upper == 10),
        ("wilcoxon", ["p_threshold=0.05"], P.WilcoxonPruner, lambda p: p._p_threshold == 0.05),
        (
            "patient",
            ["patience=2", "wrapped_pruner={_target_:optuna.pruners.MedianPruner}"],
            P.PatientPruner,
            lambda p: p._patience == 2 and isinstance(p._wrapped_pruner, P.MedianPruner),
        ),
        ("none", [], P.NopPruner, lambda p: True),
    ],
)
def test_each_pruner_is_built_with_keys_set_without_plus(name, overrides, cls, check):
    keys = [f"hydra.sweeper.pruner.{override}" for override in overrides]
    node = hydra_sweeper(f"hydra/sweeper/pruner={name}", *keys).pruner
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        pruner = samplers.build_pruner(node)
    assert isinstance(pruner, cls)
    assert check(pruner)


# -- the sweeper's names -----------------------------------------------------------------
def test_optuna_names_the_sweeper_with_the_published_plugins_defaults():
    sweeper = hydra_sweeper("hydra/sweeper=optuna")
    assert sweeper._target_.startswith("hydra_plugins.losslab_optuna_sweeper.")
    assert (sweeper.direction, sweeper.n_jobs, sweeper.max_failure_rate) == ("minimize", 2, 0.0)
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert sweeper.pruner._target_ == "optuna.pruners.NopPruner"  # the published one prunes none


@pytest.mark.parametrize("published_installed", [False, True])
def test_optuna_is_left_to_the_published_plugin_when_installed(monkeypatch, published_installed):
    stored: list[tuple[str, str]] = []

    class Store:
        @staticmethod
        def instance():
            return Store

        @staticmethod
        def store(group, name, node, provider):
            stored.append((group, name))

    find_spec = config.importlib.util.find_spec
    published = "hydra_plugins.hydra_optuna_sweeper"
    monkeypatch.setattr(
        config.importlib.util,
        "find_spec",
        lambda name, *a: (published_installed or None) if name == published else find_spec(name),
    )
    monkeypatch.setattr(config, "ConfigStore", Store)
    config.register()
    sweepers = {name for group, name in stored if group == "hydra/sweeper"}
    assert sweepers == ({"losslab_optuna"} if published_installed else {"losslab_optuna", "optuna"})


# -- real sweeps -------------------------------------------------------------------------
def sweep(tmp_path: Path, *overrides: str) -> optuna.Study:
    """The toy app's sweep into ``tmp_path/sweep``, in this process; its study."""
    sweep_toy_app(tmp_path / "sweep", *overrides)
    return load_study(f"sqlite:///{tmp_path}/sweep/optuna.db", "sweep")


def study_attrs(study: optuna.Study) -> dict:
    return study._storage.get_study_system_attrs(study._study_id)


def trial_attrs(study: optuna.Study) -> set[str]:
    return {key for trial in study.trials for key in trial.system_attrs}


DISCRETE = ["x=choice(-1.0,0.0,1.0)", "y=range(0,2)"]


# each sampler with one pruner, so that every one runs once; the toy app reports no
# intermediate values, so a pruner is only seen to be accepted by a real sweep
@pytest.mark.slow
@pytest.mark.parametrize(
    ("sampler", "pruner", "overrides", "trace"),
    [
        ("tpe", "median", ["hydra.sweeper.sampler.n_ei_candidates=30"], None),
        ("motpe", "percentile", ["hydra.sweeper.pruner.percentile=25"], None),
        ("random", "successive_halving", ["hydra.sweeper.sampler.seed=7"], None),
        ("cmaes", "hyperband", [], lambda s: any(k.startswith("cma:") for k in trial_attrs(s))),
        (
            "nsgaii",
            "threshold",
            ["hydra.sweeper.pruner.upper=100"],
            lambda s: "NSGAIISampler:generation" in trial_attrs(s),
        ),
        (
            "nsgaiii",
            "wilcoxon",
            [],
            lambda s: "NSGAIIISampler:generation" in trial_attrs(s),
        ),
        (
            "qmc",
            "patient",
            [
                "hydra.sweeper.pruner.patience=1",
                "hydra.sweeper.pruner.wrapped_pruner={_target_:optuna.pruners.MedianPruner}",
            ],
            lambda s: any(k.startswith("qmc:") for k in study_attrs(s)),
        ),
        pytest.param(
            "gp",
            "none",
            [],
            None,
            marks=pytest.mark.skipif(NO_TORCH, reason="Optuna's GPSampler needs PyTorch"),
        ),
        (
            "bruteforce",
            "median",
            DISCRETE,
            lambda s: len({tuple(t.params.items()) for t in s.trials}) == len(s.trials),
        ),
    ],
)
def test_each_sampler_and_pruner_runs_a_sweep(tmp_path, sampler, pruner, overrides, trace):
    study = sweep(
        tmp_path,
        f"hydra/sweeper/sampler={sampler}",
        f"hydra/sweeper/pruner={pruner}",
        "hydra.sweeper.n_trials=4",
        *overrides,
    )
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    ran = OmegaConf.load(tmp_path / "sweep" / "0" / ".hydra" / "hydra.yaml").hydra.sweeper
    expected = config.SAMPLERS[sampler]._target_, config.PRUNERS[pruner]._target_
    assert (ran.sampler._target_, ran.pruner._target_) == expected
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.key_or_group.startswith("hydra.sweeper."):  # typed keys set without +
            value = OmegaConf.select(ran, override.key_or_group.removeprefix("hydra.sweeper."))
            value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
            assert value == override.value()
    assert trace is None or trace(study)


@pytest.mark.slow
def test_a_grid_sweep_tries_every_point_once(tmp_path):
    """More trials asked for than the grid has points: each point once, then the sweep ends."""
    study = sweep(tmp_path, "hydra/sweeper/sampler=grid", "hydra.sweeper.n_trials=20", *DISCRETE)
    points = sorted((t.params["x"], t.params["y"]) for t in study.trials)
    assert points == sorted(itertools.product([-1.0, 0.0, 1.0], [0, 1, 2]))  # range: both ends
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


@pytest.mark.slow
def test_a_brute_force_sweep_ends_when_its_space_is_done(tmp_path):
    """One trial at a time (two at once may both take the last point, as in Optuna)."""
    study = sweep(
        tmp_path,
        "hydra/sweeper/sampler=bruteforce",
        "hydra.sweeper.n_trials=20",
        "hydra.sweeper.n_jobs=1",
        *DISCRETE,
    )
    points = [(t.params["x"], t.params["y"]) for t in study.trials]
    assert sorted(points) == sorted(itertools.product([-1.0, 0.0, 1.0], [0, 1, 2]))


@pytest.mark.slow
def test_gp_without_pytorch_is_refused_before_any_trial(tmp_path):
    hidden = tmp_path / "without_torch"
    hidden.mkdir()
    (hidden / "sitecustomize.py").write_text("import sys\nsys.modules['torch'] = None\n")
    path = os.pathsep.join(filter(None, [str(hidden), os.environ.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "tests/apps/sphere.py", "-m", f"hydra.sweep.dir={tmp_path}/sweep"]
        + ["hydra/sweeper/sampler=gp"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert proc.returncode != 0
    assert "GPSampler needs PyTorch and SciPy; pip install torch scipy" in proc.stderr
    assert not (tmp_path / "sweep" / "optuna.db").exists()


@pytest.mark.slow
def test_trials_per_run_gives_each_command_a_share_of_one_study(tmp_path):
    """A scheduled worker's firings: each adds at most its share; the study stops at n_trials
    with n_jobs larger than the share, which caps a batch too."""
    share = ["hydra.sweeper.n_trials=5", "hydra.sweeper.trials_per_run=2", "hydra.sweeper.n_jobs=3"]
    counts = [len(sweep(tmp_path, *share).trials) for _ in range(4)]
    assert counts == [2, 4, 5, 5]
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{tmp_path}/sweep/optuna.db")
    assert [t.number for t in study.trials] == list(range(5))
