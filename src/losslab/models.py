"""The MLP every study uses, built from plain values."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from losslab.config import ModelConfig


def output_activation(task: str) -> str:
    return "softmax" if task == "multiclass" else "sigmoid"


def build(
    cfg: ModelConfig,
    input_shape: Sequence[int],
    n_outputs: int,
    task: str,
    output_bias: np.ndarray | None = None,
) -> keras.Model:
    """Input -> [Dense(units) -> Dropout] per hidden layer -> Dense(n_outputs).

    ``output_bias`` initialises the output layer's bias (log prior odds for imbalance).
    """
    regularizer = keras.regularizers.L2(cfg.l2) if cfg.l2 > 0 else None
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    x = keras.layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    for i, units in enumerate(cfg.units):
        x = keras.layers.Dense(
            units, activation=cfg.activation, kernel_regularizer=regularizer, name=f"dense_{i}"
        )(x)
        if cfg.dropout > 0:
            x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i}")(x)
    bias = "zeros" if output_bias is None else keras.initializers.Constant(output_bias)
    outputs = keras.layers.Dense(
        n_outputs,
        activation=output_activation(task),
        bias_initializer=bias,
        kernel_regularizer=regularizer,
        name="output",
    )(x)
    return keras.Model(inputs, outputs, name="mlp")


def summary_text(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    return "\n".join(lines)
