"""Loss presets on top of Keras' own losses, plus any Keras loss by name or user loss by path.

Only the weighted binary cross-entropy is ours (Keras has no positive-class weight for
``BinaryCrossentropy``), and a binary focal loss whose gradient stays finite for gamma < 1.
Losses that are not Keras built-ins are registered as serialisable so a saved model loads
back without "Unknown loss function".
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from losslab.config import ConfigError, LossConfig

BINARY_LOSSES = ("bce", "weighted_bce", "focal")
ONE_HOT_LOSSES = ("categorical_ce", "categorical_focal")


@keras.saving.register_keras_serializable(package="losslab")
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy whose positive term is multiplied by ``pos_weight``.

    ``pos_weight`` may be one number or one per output (multi-label data), the per-output
    weighting Keras' ``class_weight`` cannot express.
    """

    def __init__(
        self,
        pos_weight: float | Sequence[float] = 1.0,
        name: str = "weighted_binary_crossentropy",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.pos_weight = list(pos_weight) if isinstance(pos_weight, Sequence) else pos_weight

    def call(self, y_true, y_pred):
        # ``fit`` passes binary labels as (B,) against (B, 1) predictions; broadcasting the
        # two would score a (B, B) matrix. Keras aligns ranks in a private helper, so the
        # labels take the predictions' shape here (a size mismatch still raises).
        y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))
        eps = keras.config.epsilon()
        p = ops.clip(y_pred, eps, 1.0 - eps)
        w = ops.convert_to_tensor(self.pos_weight, dtype=y_pred.dtype)
        per_output = -(w * y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
        return ops.mean(per_output, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pos_weight": self.pos_weight}


@keras.saving.register_keras_serializable(package="losslab")
class StableBinaryFocalCrossentropy(keras.losses.BinaryFocalCrossentropy):
    """Keras' binary focal loss on outputs kept a float32 epsilon away from 0 and 1.

    Its focal factor ``(1 - p_t) ** gamma`` has the slope ``gamma (1 - p_t) ** (gamma - 1)``,
    infinite at a saturated output (a sigmoid in float32 returns exactly 1 past a logit of
    about 17) whenever ``gamma < 1``: the gradient is NaN and training stops. Keras clips
    only inside the cross-entropy term; clipping the output first keeps every allowed
    ``gamma`` (>= 0) finite, as its cross-entropy already is.
    """

    def call(self, y_true, y_pred):
        if self.from_logits:  # Keras' sigmoid of the logits: left as it is
            return super().call(y_true, y_pred)
        eps = keras.config.epsilon()
        return super().call(y_true, ops.clip(y_pred, eps, 1.0 - eps))


def _import(path: str) -> Any:
    module, _, attr = path.rpartition(".")
    if not module:
        raise ConfigError(f"loss._target_={path!r} is not an import path like pkg.mod.Name")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"loss._target_={path!r} cannot be imported: {err}") from err


def _register(obj: Any) -> None:
    """Make a user loss known to Keras' deserialiser under its own registered name."""
    name = keras.saving.get_registered_name(obj)
    keras.saving.get_custom_objects().setdefault(name, obj)


def _custom(target: str, kwargs: dict[str, Any]) -> keras.losses.Loss | Callable:
    obj = _import(target)
    _register(obj)
    if inspect.isclass(obj):
        return obj(**kwargs)
    if kwargs:
        raise ConfigError(
            f"loss._target_={target!r} is a function; loss.kwargs={kwargs} need a Loss class"
        )
    return obj


def balanced_pos_weight(labels: np.ndarray) -> list[float]:
    """neg / pos per output: each output's positive term weighs as much as its negative one.

    An output with no positive in training has no positive term to weigh: it gets 1.
    """
    y = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1)
    pos = y.sum(axis=0)
    return np.where(pos > 0, (len(y) - pos) / np.maximum(pos, 1), 1.0).tolist()


def get(cfg: LossConfig, labels: np.ndarray | None = None) -> keras.losses.Loss | Callable:
    """The loss object for ``cfg``; bad names or arguments raise ValueError at once.

    ``pos_weight: balanced`` (weighted_bce) is computed from the training ``labels``; without
    them (checking a config before the data is loaded) it stands at 1.
    """
    kwargs = dict(cfg.kwargs)
    if kwargs.get("pos_weight") == "balanced":
        kwargs["pos_weight"] = balanced_pos_weight(labels) if labels is not None else 1.0
    presets: dict[str, Callable[[], Any]] = {
        "bce": lambda: keras.losses.BinaryCrossentropy(**kwargs),
        "weighted_bce": lambda: WeightedBinaryCrossentropy(**kwargs),
        "focal": lambda: StableBinaryFocalCrossentropy(**kwargs),
        "categorical_ce": lambda: keras.losses.CategoricalCrossentropy(**kwargs),
        "sparse_categorical_ce": lambda: keras.losses.SparseCategoricalCrossentropy(**kwargs),
        "categorical_focal": lambda: keras.losses.CategoricalFocalCrossentropy(**kwargs),
        "keras": lambda: keras.losses.get({"class_name": cfg.class_name, "config": kwargs}),
        "custom": lambda: _custom(cfg._target_, kwargs),  # type: ignore[arg-type]
    }
    _check_ranges(cfg.name, kwargs)
    try:
        return presets[cfg.name]()
    except TypeError as err:
        raise ConfigError(f"loss={cfg.name}: bad loss.kwargs {kwargs}: {err}") from err
    except ValueError:  # Keras: "Could not interpret loss identifier"
        if cfg.name != "keras":
            raise
        raise ConfigError(
            f"loss.class_name={cfg.class_name}: not a Keras loss class; choose one of "
            f"{keras_loss_classes()}"
        ) from None


def keras_loss_classes() -> list[str]:
    """The built-in ``keras.losses.Loss`` classes ``loss=keras`` can name."""
    return sorted(
        name
        for name, obj in vars(keras.losses).items()
        if inspect.isclass(obj)
        and issubclass(obj, keras.losses.Loss)
        and obj is not keras.losses.Loss
    )


# (low, high) per loss argument; Keras takes any number and trains on nonsense
RANGES = {
    "gamma": (0.0, None),
    "alpha": (0.0, 1.0),
    "label_smoothing": (0.0, 1.0),
}


def _check_ranges(name: str, kwargs: dict[str, Any]) -> None:
    """Refuse a preset's arguments outside their meaning: a negative focal ``gamma`` rewards
    confident mistakes, a ``pos_weight`` at or below 0 removes or inverts the positives.
    Losses named by class or import path mean their own things by these names."""
    if name in ("keras", "custom"):
        return
    for key, (low, high) in RANGES.items():
        value = kwargs.get(key)
        if isinstance(value, (int, float)) and not (
            low <= value and (high is None or value <= high)
        ):
            allowed = f">= {low:g}" if high is None else f"in [{low:g}, {high:g}]"
            raise ConfigError(
                f"loss.kwargs.{key}={value} is not allowed ({name}); it must be {allowed}"
            )
    weights = kwargs.get("pos_weight")
    values = (
        weights if isinstance(weights, Sequence) and not isinstance(weights, str) else [weights]
    )
    if weights is not None and any(not isinstance(w, (int, float)) or w <= 0 for w in values):
        raise ConfigError(
            f"loss.kwargs.pos_weight={weights} is not allowed; it must be a number > 0, "
            "one per output, or balanced"
        )


def check_task(cfg: LossConfig, task: str) -> None:
    """Reject a loss that cannot fit the task's outputs, before training starts."""
    if task in ("binary", "multilabel") and cfg.name in (*ONE_HOT_LOSSES, "sparse_categorical_ce"):
        raise ConfigError(
            f"loss={cfg.name} needs a softmax over classes; {task} data has sigmoid outputs: "
            f"choose one of {list(BINARY_LOSSES)}"
        )
    if task == "multiclass" and cfg.name in BINARY_LOSSES:
        raise ConfigError(
            f"loss={cfg.name} is binary; multiclass data needs one of "
            f"{[*ONE_HOT_LOSSES, 'sparse_categorical_ce']}"
        )


def wants_one_hot(cfg: LossConfig, task: str) -> bool:
    """Multi-class labels are one-hot except for the sparse loss."""
    return task == "multiclass" and cfg.name != "sparse_categorical_ce"
