"""Conditional search spaces, for ``hydra.sweeper.custom_search_space``.

The sweeper's ``params`` are a flat product; a remedy's own parameters only mean something
when the remedy is chosen (focal ``gamma`` under focal loss, the augmentation's shifts under
augmented oversampling). These functions suggest them only then; the sweeper turns every
suggested name into an override of the job (``loss=focal loss.kwargs.gamma=2.3``).
"""

from __future__ import annotations

from typing import Any

from losslab.config import IMAGE_SOURCES

LOSSES = ("bce", "weighted_bce", "focal")
REMEDIES = ("none", "class_weight", "oversample", "oversample_augment")


# the remedies that already weight the minority (a weight, or more draws of it)
WEIGHTING = ("class_weight", "oversample", "oversample_augment")


def _loss(trial: Any, weighted: bool) -> dict[str, Any]:
    """The loss and its parameters; under a remedy that already weights the minority
    (``weighted``) the loss adds no weight of its own: one minority weight per trial, not a
    product of two (pos_weight 658 on class weights 243 trains on a loss of 4e4)."""
    loss = trial.suggest_categorical("loss", list(LOSSES))
    if loss == "weighted_bce":
        if weighted:
            return {"loss.kwargs.pos_weight": 1.0}
        trial.suggest_float("loss.kwargs.pos_weight", 1.0, 1000.0, log=True)
    elif loss == "focal":
        trial.suggest_float("loss.kwargs.gamma", 0.0, 5.0)
        if weighted:
            return {"loss.kwargs.apply_class_balancing": False}
        trial.suggest_float("loss.kwargs.alpha", 0.25, 0.99)
    return {}


def _remedy(trial: Any, images: bool) -> str:
    choices = [r for r in REMEDIES if images or r != "oversample_augment"]
    remedy = trial.suggest_categorical("imbalance", choices)
    if remedy == "class_weight":
        trial.suggest_float("imbalance.ratio", 1.0, 1000.0, log=True)
    elif remedy.startswith("oversample"):
        trial.suggest_float("imbalance.target_fraction", 0.05, 0.5)
    if remedy == "oversample_augment":
        trial.suggest_float("imbalance.shift", 0.0, 0.15)
        trial.suggest_float("imbalance.rotation", 0.0, 0.05)
        trial.suggest_float("imbalance.zoom", 0.0, 0.15)
    trial.suggest_categorical("imbalance.initial_bias", [False, True])
    return remedy


def remedies(config: Any, trial: Any) -> dict[str, Any]:
    """Remedy (none, class weights, oversampling, augmented oversampling on image data) and
    loss (cross-entropy, weighted, focal), each with its own parameters, and one minority
    weight per trial: the loss's own weight only where the remedy weights nothing."""
    remedy = _remedy(trial, str(config.data.source) in IMAGE_SOURCES)
    return _loss(trial, remedy in WEIGHTING)
