"""Logging a trained Keras model through MLflow's TensorFlow flavour."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from importlib.metadata import version
from typing import Any

import numpy as np

MLFLOW_TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ID_ENV = "MLFLOW_EXPERIMENT_ID"
EXPERIMENT_NAME_ENV = "MLFLOW_EXPERIMENT_NAME"


def log_keras_model(
    uri: str, run_id: str, experiment_id: str, model: Any, input_example: Any
) -> str:
    """Log ``model`` (with signature and input example) to run ``run_id``; its model URI.

    The inference graph is logged uncompiled, so it loads anywhere without losslab's (or the
    user's) custom loss. ``mlflow.keras.log_model`` writes the input example before creating
    its folder and fails, so the TensorFlow flavour is used. The flavour takes the store and
    the experiment of its LoggedModel from MLflow's globals (tracking URI, experiment id),
    not from ``run_id``: both are set for the call and restored after it, so no fluent run
    has to be started (and ended) around it. The signature's output comes from calling the
    model on the example, not ``predict``, which traces a predict function for a few rows.
    """
    import keras
    import mlflow.tensorflow
    from mlflow.models import infer_signature

    inference = keras.Model(model.inputs, model.outputs, name=model.name)
    rows = keras.tree.map_structure(np.asarray, input_example)  # a DataFrame as its array
    output = keras.ops.convert_to_numpy(model(rows, training=False))
    signature = infer_signature(input_example, output)
    saved = {key: os.environ.pop(key, None) for key in (EXPERIMENT_ID_ENV, EXPERIMENT_NAME_ENV)}
    previous_uri = os.environ.get(MLFLOW_TRACKING_URI_ENV)
    os.environ[EXPERIMENT_ID_ENV] = experiment_id
    mlflow.set_tracking_uri(uri)
    try:
        with quiet_progress():
            info = mlflow.tensorflow.log_model(
                inference,
                name="model",
                signature=signature,
                input_example=input_example,
                run_id=run_id,
                pip_requirements=requirements(),
            )
    finally:
        mlflow.set_tracking_uri(previous_uri)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return info.model_uri


def requirements() -> list[str]:
    """The logged model's pip requirements, pinned to what is installed (MLflow adds itself).

    They are what MLflow infers for the uncompiled inference graph (TensorFlow, NumPy,
    cloudpickle), and Keras, which saved it; given, MLflow skips inferring them, which loads
    the model in a subprocess and took about 7 s per model on a 2-core machine.
    """
    import mlflow.tensorflow

    pinned = [f"{name}=={version(name)}" for name in ("keras", "numpy", "cloudpickle")]
    return [*mlflow.tensorflow.get_default_pip_requirements(), *pinned]


@contextmanager
def quiet_progress() -> Iterator[None]:
    """No progress bar while MLflow predicts on the input example to check the logged model.

    Keras writes ``predict``'s bar to stdout (control codes included, also into a file), or,
    with interactive logging off, as absl INFO records, which Hydra's logging shows. Keras
    keeps that switch per thread, and on the JAX and PyTorch backends it draws the bar from
    a worker thread; so interactive logging is off for this thread, absl's INFO records are
    held back, and what the workers write to stdout meanwhile is dropped.
    """
    import keras

    absl = logging.getLogger("absl")
    level, interactive = absl.level, keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()
    absl.setLevel(max(level, logging.WARNING))
    try:
        with open(os.devnull, "w") as sink, redirect_stdout(sink):
            yield
    finally:
        absl.setLevel(level)
        if interactive:
            keras.config.enable_interactive_logging()


def load_inference_model(path: str) -> Any:
    """A saved ``.keras`` model's inference graph, loaded with Keras' safe mode on (no
    arbitrary code runs) and uncompiled, so no custom loss needs to be known (what is logged
    is the uncompiled graph; :func:`losslab.models.load` restores a compiled one)."""
    import keras

    return keras.saving.load_model(path, compile=False, safe_mode=True)
