"""Logging a trained Keras model through MLflow's TensorFlow flavour."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from importlib.metadata import version
from typing import Any

import numpy as np

MLFLOW_TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ID_ENV = "MLFLOW_EXPERIMENT_ID"
EXPERIMENT_NAME_ENV = "MLFLOW_EXPERIMENT_NAME"


def log_keras_model(
    uri: str, run_id: str, experiment_id: str, model: Any, input_example: Any, encoding: Any = None
) -> str:
    """Log ``model`` (with signature and input example) to run ``run_id``; its model URI.

    With ``encoding`` (plain parameters, :mod:`losslab.tracking.raw_rows_model`), the logged
    model takes raw rows (``input_example`` is a few of them, a DataFrame) and encodes them
    first: see :func:`log_raw_rows_model`. Else the inference graph is logged uncompiled, so it
    loads anywhere without losslab's (or the user's) custom loss. ``mlflow.keras.log_model`` writes
    the input example before creating its folder and fails, so the TensorFlow flavour is used.
    The signature's output comes from calling the model on the example, not ``predict``,
    which traces a predict function for a few rows.
    """
    import keras
    import mlflow.tensorflow
    from mlflow.models import infer_signature

    if encoding is not None:
        return log_raw_rows_model(uri, run_id, experiment_id, model, input_example, encoding)
    inference = keras.Model(model.inputs, model.outputs, name=model.name)
    rows = keras.tree.map_structure(np.asarray, input_example)  # a DataFrame as its array
    output = keras.ops.convert_to_numpy(model(rows, training=False))
    signature = infer_signature(input_example, output)
    with _store(uri, experiment_id), quiet_progress():
        info = mlflow.tensorflow.log_model(
            inference,
            name="model",
            signature=signature,
            input_example=input_example,
            run_id=run_id,
            pip_requirements=requirements(),
        )
    return info.model_uri


def log_raw_rows_model(
    uri: str, run_id: str, experiment_id: str, model: Any, example: Any, encoding: dict
) -> str:
    """A pyfunc model that takes raw rows (a DataFrame with the example's columns) and answers
    the Keras model's probabilities on their ``encoding``. Its code is
    :mod:`losslab.tracking.raw_rows_model` (MLflow's models from code: nothing pickled); the
    Keras model and the encoding (JSON) are its artifacts. Plain parameters rather than the
    fitted scikit-learn transform saved by skops: skops imports every scikit-learn module
    (and PyTorch with it, where installed) to list the types it trusts, seconds at every
    logging and every load. Every column of the signature is optional: a missing value is
    imputed, as in training."""
    import json
    import tempfile

    import keras
    import mlflow.pyfunc
    from mlflow.models import Model, infer_signature
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    from losslab.tracking import raw_rows_model

    inputs = raw_rows_model.encode(example, encoding)
    output = keras.ops.convert_to_numpy(model(inputs, training=False)).astype(np.float64)
    with warnings.catch_warnings():  # integer columns: the file's own, kept as they are
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer")
        inferred = infer_signature(example, output)
    columns = [ColSpec(c.type, c.name, required=False) for c in inferred.inputs.inputs]
    signature = ModelSignature(Schema(columns), inferred.outputs)
    with tempfile.TemporaryDirectory() as folder:
        artifacts = {
            raw_rows_model.KERAS_MODEL: f"{folder}/model.keras",
            raw_rows_model.ENCODING: f"{folder}/encoding.json",
        }
        model.save(artifacts[raw_rows_model.KERAS_MODEL])
        with open(artifacts[raw_rows_model.ENCODING], "w") as f:
            json.dump(encoding, f)
        with _store(uri, experiment_id), quiet_progress(), _quiet_check():
            info = Model.log(
                artifact_path=None,
                name="model",
                flavor=mlflow.pyfunc,
                run_id=run_id,
                python_model=raw_rows_model.__file__,
                artifacts=artifacts,
                signature=signature,
                input_example=example,
                pip_requirements=requirements(("pandas",)),
            )
    return info.model_uri


@contextmanager
def _quiet_check() -> Iterator[None]:
    """No INFO line and no download bars while MLflow checks the example against the
    signature by loading the logged model."""
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    level, bar = pyfunc_log.level, os.environ.get(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name)
    pyfunc_log.setLevel(logging.WARNING)
    os.environ[MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name] = "false"
    try:
        yield
    finally:
        pyfunc_log.setLevel(level)
        if bar is None:
            os.environ.pop(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name, None)
        else:
            os.environ[MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name] = bar


@contextmanager
def _store(uri: str, experiment_id: str) -> Iterator[None]:
    """MLflow's globals (tracking URI, experiment id) set for one call, restored after it.

    The flavours take the store and the experiment of their LoggedModel from them, not from
    the run id, so no fluent run has to be started (and ended) around a call.
    """
    import mlflow

    saved = {key: os.environ.pop(key, None) for key in (EXPERIMENT_ID_ENV, EXPERIMENT_NAME_ENV)}
    previous_uri = os.environ.get(MLFLOW_TRACKING_URI_ENV)
    os.environ[EXPERIMENT_ID_ENV] = experiment_id
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous_uri)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def requirements(more: tuple[str, ...] = ()) -> list[str]:
    """The logged model's pip requirements, pinned to what is installed (MLflow adds itself).

    They are what MLflow infers for the uncompiled inference graph (TensorFlow, NumPy,
    cloudpickle), and Keras, which saved it; given, MLflow skips inferring them, which loads
    the model in a subprocess and took about 7 s per model on a 2-core machine.
    """
    import mlflow.tensorflow

    names = ("keras", "numpy", "cloudpickle", *more)
    pinned = [f"{name}=={version(name)}" for name in names]
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
