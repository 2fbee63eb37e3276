"""The MLP every study uses, built from plain values."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from losslab.config import ConfigError, ModelConfig
from losslab.data.dataset import ModelShape


def keras_activations() -> list[str]:
    """The activation names Keras resolves (``keras.activations.get``)."""
    skip = {"get", "serialize", "deserialize"}
    return sorted(
        n
        for n, f in vars(keras.activations).items()
        if callable(f) and n[0] != "_" and n not in skip
    )


def check(cfg: ModelConfig) -> None:
    """Refuse a hidden-layer activation Keras does not know, before any data is loaded."""
    try:
        keras.activations.get(cfg.activation)
    except ValueError:
        raise ConfigError(
            f"model.activation={cfg.activation}: not a Keras activation; choose one of "
            f"{keras_activations()}"
        ) from None


def output_activation(task: str) -> str:
    return "softmax" if task == "multiclass" else "sigmoid"


def build(
    cfg: ModelConfig,
    shape: ModelShape,
    output_bias: np.ndarray | None = None,
    name: str | None = None,
) -> keras.Model:
    """Input -> [convolution blocks] -> [Dense(units) -> Dropout] per layer -> Dense(n_outputs).

    The input stays the flat vector every data source gives (one signature for the logged
    model); a CNN reshapes it to ``image_shape`` first. ``output_bias`` initialises the
    output layer's bias (log prior odds for imbalance).
    """
    regularizer = keras.regularizers.L2(cfg.l2) if cfg.l2 > 0 else None
    inputs = keras.Input(shape=tuple(shape.input_shape), name="features")
    x = inputs
    if cfg.kind == "cnn":
        x = _conv_blocks(x, cfg, shape.image_shape, regularizer)
    if len(x.shape) > 2:
        x = keras.layers.Flatten()(x)
    for i, units in enumerate(cfg.units):
        x = keras.layers.Dense(
            units, activation=cfg.activation, kernel_regularizer=regularizer, name=f"dense_{i}"
        )(x)
        if cfg.dropout > 0:
            x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i}")(x)
    bias = "zeros" if output_bias is None else keras.initializers.Constant(output_bias)
    outputs = keras.layers.Dense(
        shape.n_outputs,
        activation=output_activation(shape.task),
        bias_initializer=bias,
        kernel_regularizer=regularizer,
        name="output",
    )(x)
    return keras.Model(inputs, outputs, name=name or str(cfg.kind))


def _conv_blocks(x, cfg: ModelConfig, image_shape: Sequence[int] | None, regularizer):
    if image_shape is None:
        raise ValueError("model.kind=cnn needs image data; this data set has flat features")
    x = keras.layers.Reshape(tuple(image_shape), name="image")(x)
    for i, filters in enumerate(cfg.filters):
        x = keras.layers.Conv2D(
            filters,
            3,
            padding="same",
            activation=cfg.activation,
            kernel_regularizer=regularizer,
            name=f"conv_{i}",
        )(x)
        if min(x.shape[1:3]) >= 2:
            x = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    return x


def summary_text(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    return "\n".join(lines)


def load(path: str, compile: bool = True) -> keras.Model:
    """A saved ``.keras`` model, loaded with Keras' safe mode on (no arbitrary code runs).

    losslab's own losses are registered as Keras serializables, so they load by name.
    """
    import losslab.losses  # noqa: F401 - registers the custom losses

    return keras.saving.load_model(path, compile=compile, safe_mode=True)
