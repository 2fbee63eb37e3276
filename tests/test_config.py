"""Bad config fails at start, naming the key and what is allowed; no TensorFlow needed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from losslab.config import ConfigError, to_objects
from tests.helpers import REPO, compose


def test_default_composes_to_typed_objects(tmp_path):
    conf = to_objects(compose(tmp_path))
    assert conf.data.source == "digits_pair" and conf.data.n_minority == 20
    assert conf.evaluation.threshold == "recall_at_fpr"
    assert conf.trainer.early_stopping.monitor == conf.objective
    assert conf.loss.name == "bce"
    assert conf.tracking.uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert conf.objective == "val_pr_auc"


@pytest.mark.parametrize(
    ("override", "allowed"),
    [
        ("optimizer.name=adagrad", "[adam, adamw, rmsprop, sgd]"),
        ("evaluation.threshold=best", "[f1, recall_at_fpr, fpr_bound, recall_at_precision, fixed]"),
        ("model.kind=rnn", "[mlp, cnn]"),
        ("imbalance.strategy=smote", "[none, class_weight, balanced, oversample]"),
        ("trainer.early_stopping.mode=up", "[auto, min, max]"),
        ("data.val_split=random", "[stratified, tail]"),
    ],
)
def test_a_choice_outside_its_set_fails_at_composition_with_the_choices(
    tmp_path, override, allowed
):
    with pytest.raises(ConfigCompositionException) as err:
        compose(tmp_path, override)
    assert f"expected one of {allowed}" in str(err.value.__cause__)


@pytest.mark.parametrize(
    ("overrides", "directions", "monitor"),
    [
        (["objective=val_loss"], ["minimize"], "val_loss"),
        (["objective=[val_pr_auc,val_loss]"], ["maximize", "minimize"], "val_pr_auc"),
        (["objective=[val_loss,val_recall]", "direction=[minimize,minimize]"], None, "val_loss"),
    ],
)
def test_several_objectives_each_get_a_direction_and_early_stopping_watches_the_first(
    tmp_path, overrides, directions, monitor
):
    conf = to_objects(compose(tmp_path, *overrides))
    expected = directions or ["minimize", "minimize"]
    assert conf.directions == expected
    assert conf.trainer.early_stopping.monitor == monitor


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("direction=up", "direction='up': use maximize or minimize"),
        ("direction=[maximize,up]", "direction='up': use maximize or minimize"),
        ("objective=[]", "objective=[]: give a metric name or a list"),
    ],
)
def test_a_direction_outside_its_set_is_refused_with_the_choices(tmp_path, override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        to_objects(compose(tmp_path, override))


@pytest.mark.parametrize(
    ("option", "schema"),
    [
        ("digits_9v3", "DigitsPairConfig"),
        ("digits_9v4", "DigitsPairConfig"),
        ("mnist_9v4", "ImagePairConfig"),
        ("fashion_mnist_9v4", "ImagePairConfig"),
        ("fashion_mnist", "ImageClassesConfig"),
        ("creditcard", "TableConfig"),
        ("table", "TableConfig"),
        ("synthetic_fraud", "SyntheticFraudConfig"),
        ("imdb", "ImdbConfig"),
        ("multilabel", "MultilabelConfig"),
    ],
)
def test_each_data_option_is_bound_to_its_sources_schema(tmp_path, option, schema):
    extra = {"creditcard": ["data.path=cards.csv"], "table": ["data.path=t.csv", "data.label=y"]}
    extra = extra.get(option, [])
    conf = to_objects(compose(tmp_path, f"data={option}", *extra, "loss=bce"))
    assert type(conf.data).__name__ == schema
    with pytest.raises(ConfigCompositionException) as err:  # a key only another source reads
        compose(tmp_path, f"data={option}", "data.no_such_key=1")
    assert f"Key 'no_such_key' not in '{schema}'" in str(err.value.__cause__)


def test_a_key_of_another_source_is_refused_at_composition(tmp_path):
    with pytest.raises(ConfigCompositionException) as err:
        compose(tmp_path, "data.num_words=500")  # an IMDB key, on the digits
    assert "full_key: data.num_words" in str(err.value.__cause__)


def test_switching_the_source_without_the_data_option_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"data.source=imdb does not match .*data=<option>"):
        to_objects(compose(tmp_path, "data.source=imdb"))


# -- every extension point's items are wired everywhere they must be ----------------------
def options(group: str) -> list[str]:
    return sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))


def test_every_data_source_has_a_schema_and_a_loader_and_every_option_one_source():
    from losslab.config import SCHEMAS, DataSource
    from losslab.data import loaders

    assert set(DataSource) == set(SCHEMAS) == set(loaders())
    sources = {str(compose(Path("."), f"data={o}").data.source) for o in options("data")}
    assert sources == {str(s) for s in DataSource}


def test_every_remedy_option_has_its_strategy_and_the_sweeps_draw_only_options():
    from losslab.config import ImbalanceStrategy
    from losslab.search.spaces import REMEDIES

    strategies = {
        str(compose(Path("."), f"imbalance={o}").imbalance.strategy) for o in options("imbalance")
    }
    assert strategies == {str(s) for s in ImbalanceStrategy}
    assert set(REMEDIES) <= set(options("imbalance"))


def test_every_remedy_the_study_runs_is_a_variant_and_every_strategy_is_studied():
    from losslab.config import ImbalanceStrategy
    from losslab.study_cli import REMEDIES

    assert set(REMEDIES) <= set(options("variant"))
    studied = {
        str(compose(Path("."), f"+variant={r}").imbalance.strategy)
        for r in REMEDIES
        if r != "oversample_augment"  # image data only
    }
    assert studied == {str(s) for s in ImbalanceStrategy}


@pytest.mark.parametrize(
    "preset", sorted(p.stem for p in (REPO / "conf/hparams_search").glob("*.yaml"))
)
def test_every_search_preset_takes_another_sampler_from_the_command_line(preset):
    """A preset's own sampler settings live in its sampler option, not merged on whatever
    sampler the command line chooses (TPE's ``multivariate`` was refused by the random
    sampler's schema)."""
    from losslab.composition import compose as compose_train

    overrides = [f"hparams_search={preset}", "hydra/sweeper/sampler=random"]
    cfg = compose_train(overrides, with_hydra=True)
    assert cfg.hydra.sweeper.sampler._target_ == "optuna.samplers.RandomSampler"
