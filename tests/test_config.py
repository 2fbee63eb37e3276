"""Bad config fails at start, naming the key and what is allowed; no TensorFlow needed."""

from __future__ import annotations

import pytest

from losslab.config import ConfigError, to_objects
from tests.helpers import compose, run_cli


def test_default_composes_to_typed_objects(tmp_path):
    conf = to_objects(compose(tmp_path))
    assert conf.data.source == "digits_pair"
    assert conf.loss.name == "bce"
    assert conf.tracking.uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert conf.objective == "val_pr_auc"


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("model.dropout=1.5", "model.dropout=1.5"),
        ("optimizer.lr=0", "optimizer.lr=0"),
        ("optimizer.lr=-1e-3", "optimizer.lr"),
        ("imbalance.ratio=0", "imbalance.ratio=0"),
        ("trainer.batch_size=0", "trainer.batch_size=0"),
        ("trainer.epochs=-1", "trainer.epochs=-1"),
        ("optimizer.name=adagrad", "choose one of ['adam', 'adamw', 'rmsprop', 'sgd']"),
        ("evaluation.threshold=best", "one of ['f1', 'recall_at_fpr', 'recall_at_precision'"),
    ],
)
def test_out_of_range_values_name_the_key(tmp_path, override, needle):
    with pytest.raises(ConfigError, match=None) as err:
        to_objects(compose(tmp_path, override))
    assert needle in str(err.value)


@pytest.mark.slow
def test_wrong_group_option_lists_the_choices(tmp_path):
    proc = run_cli(tmp_path, "loss=nope", "--cfg", "job", check=False)
    assert proc.returncode != 0
    assert "Could not find 'loss/nope'" in proc.stderr
    assert "focal" in proc.stderr and "weighted_bce" in proc.stderr


@pytest.mark.slow
def test_wrong_type_names_the_key(tmp_path):
    proc = run_cli(tmp_path, "trainer.epochs=many", "--cfg", "job", check=False)
    assert proc.returncode != 0
    assert "trainer.epochs" in proc.stderr and "many" in proc.stderr


@pytest.mark.slow
def test_misspelt_key_names_the_key(tmp_path):
    proc = run_cli(tmp_path, "trainer.epoch=3", "--cfg", "job", check=False)
    assert proc.returncode != 0
    # Hydra echoes the override; the schema's refusal is what names the key as unknown
    assert "Key 'epoch' not in 'TrainerConfig'" in proc.stderr
    assert "full_key: trainer.epoch" in proc.stderr


@pytest.mark.slow
def test_bad_value_fails_before_any_run_is_recorded(tmp_path):
    proc = run_cli(tmp_path, "model.dropout=1.2", check=False)
    assert proc.returncode != 0
    assert "model.dropout=1.2" in proc.stderr
    assert "[0, 1)" in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()
