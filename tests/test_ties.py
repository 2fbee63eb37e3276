"""Trials that share the best objective value are ranked by the tie-breaker, and the tie is
recorded: on the parent run and on the terminal (in-memory Optuna studies)."""

from __future__ import annotations

import logging

import optuna
import pytest
from mlflow import MlflowClient
from optuna.distributions import FloatDistribution

from hydra_plugins.losslab_optuna_sweeper import results
from losslab.search.pruning import BestSoFarPruningCallback
from losslab.search.report import log_study_end
from losslab.search.settings import best_trials
from losslab.search.ties import DEGENERATE, TIE_BREAKER, choose

# each test records into a new store of its own, copied (tests/helpers.py: new_store)
pytestmark = pytest.mark.usefixtures("mlflow_db")


def study_of(rows: list[tuple], direction: str = "maximize"):
    """One complete trial per (objective, tie-breaker[, test recall]) row, in order, and a
    pruned one."""
    study = optuna.create_study(direction=direction)
    for i, (value, tie, *test) in enumerate(rows):
        attrs = {} if tie is None else {TIE_BREAKER: tie}
        attrs.update(dict.fromkeys(["test_recall"] * len(test), *test))
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": 0.001 * (i + 1)},
                distributions={"lr": FloatDistribution(1e-4, 1.0)},
                value=value,
                user_attrs=attrs,
            )
        )
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED))
    return study


def test_tied_trials_are_ranked_by_the_tie_breaker_not_their_number():
    study = study_of([(0.9, 0.99), (1.0, 0.91), (1.0, 0.97), (1.0, 0.93)])
    choice = choose(study)
    assert choice.trial.number == 2  # Optuna's best_trial would be 1
    assert study.best_trial.number == 1
    assert [t.number for t in choice.tied] == [1, 2, 3]
    assert choice.rule == f"objective, then higher {TIE_BREAKER}"


def test_a_minimised_objective_ties_on_its_lowest_value():
    choice = choose(study_of([(0.2, 0.5), (0.1, 0.6), (0.1, 0.7)], "minimize"))
    assert choice.trial.number == 2 and len(choice.tied) == 2


def test_ties_on_both_fall_to_the_trial_number_and_say_so():
    choice = choose(study_of([(1.0, None), (1.0, None)]))
    assert choice.trial.number == 0
    assert choice.rule.endswith("then lower trial number")
    assert choose(study_of([(0.5, 0.8), (0.7, 0.1)])).rule == "objective"


def test_the_terminal_names_the_chosen_trial_and_the_tie(caplog):
    study = study_of([(1.0, 0.91), (1.0, 0.97), (0.8, 0.99)])
    with caplog.at_level(logging.INFO):
        results.print_best(study)
    text = caplog.text
    assert "chosen trial 1: 1; lr=0.002" in text
    assert "2 trials tied at 1; chosen by objective, then higher" in text
    assert "Pareto" not in text


def test_the_parent_run_records_the_tie_and_the_chosen_trial(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run_id = client.create_run(client.create_experiment("ties")).info.run_id
    log_study_end(client, run_id, study_of([(1.0, 0.91), (1.0, 0.97), (1.0, 0.93), (0.5, 1.0)]))
    run = client.get_run(run_id)
    assert run.data.metrics["best_ties"] == 3
    assert run.data.metrics["best_value"] == 1.0
    assert run.data.tags["optuna.best_trial"] == "1"
    assert run.data.tags["optuna.tied_trials"] == "0,1,2"
    assert TIE_BREAKER in run.data.tags["optuna.tie_rule"]
    assert float(run.data.params["lr"]) == pytest.approx(0.002)


def test_the_sweep_prints_the_test_figures_of_the_chosen_trial_once(caplog):
    study = study_of([(1.0, 0.91, 0.5), (1.0, 0.97, 0.96)])
    with caplog.at_level(logging.INFO):
        results.print_best(study)
    assert caplog.text.count("test, chosen trial") == 1
    assert "test, chosen trial 1: recall 0.9600" in caplog.text


def test_a_pruned_fold_names_its_epoch_within_the_fold():
    """Steps run on across folds for the pruner; the message counts as the epoch lines do."""
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(0.9))
    trial = study.ask()
    callback = BestSoFarPruningCallback(trial, "val_recall_at_fpr", maximize=True)
    callback.start_fold(1, 15)
    with pytest.raises(optuna.TrialPruned, match=r"^Trial was pruned at epoch 3 of fold 1\.$") as e:
        callback.on_epoch_end(2, {"val_recall_at_fpr": 0.5})
    assert e.value.objective == 0.5
    assert study.trials[0].intermediate_values == {17: 0.5}


# -- a degenerate trial (its model answers every validation sample alike) ------------------
def _mark_degenerate(study: optuna.Study, number: int) -> optuna.Study:
    """The same trials, ``number`` marked degenerate as its job marks it."""
    marked = optuna.create_study(directions=study.directions)
    for trial in study.trials:
        attrs = dict(trial.user_attrs)
        if trial.number == number:
            attrs[DEGENERATE] = "validation predictions constant (spread 0)"
        marked.add_trial(
            optuna.trial.create_trial(
                state=trial.state,
                params=trial.params,
                distributions=trial.distributions,
                values=trial.values,
                user_attrs=attrs,
            )
        )
    return marked


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_a_degenerate_trial_is_never_chosen_nor_reported_best(tmp_path, caplog, direction):
    best = 1.0 if direction == "maximize" else 0.0
    study = _mark_degenerate(study_of([(0.5, 0.8), (best, 0.99), (0.5, 0.9)], direction), 1)
    assert study.best_trial.number == 1  # Optuna's own view counts it
    choice = choose(study)
    assert choice.trial.number == 2 and [t.number for t in choice.tied] == [0, 2]
    assert [t.number for t in best_trials(study)] == [2]
    with caplog.at_level(logging.INFO):
        results.print_best(study)
    assert "chosen trial 2: 0.5" in caplog.text
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run_id = client.create_run(client.create_experiment("degenerate")).info.run_id
    log_study_end(client, run_id, study)
    run = client.get_run(run_id)
    assert run.data.tags["optuna.best_trial"] == "2" and run.data.metrics["best_value"] == 0.5


def test_only_degenerate_trials_choose_none():
    study = _mark_degenerate(study_of([(1.0, 0.9)]), 0)
    assert choose(study) is None and best_trials(study) == []


def test_a_degenerate_trial_hides_no_real_trial_from_the_pareto_front():
    study = optuna.create_study(directions=["maximize", "maximize"])
    for values in ([1.0, 1.0], [0.9, 0.5], [0.5, 0.9], [0.4, 0.4]):
        study.add_trial(optuna.trial.create_trial(values=values))
    assert [t.number for t in study.best_trials] == [0]  # the constant model dominates all
    marked = _mark_degenerate(study, 0)
    assert sorted(t.number for t in best_trials(marked)) == [1, 2]
