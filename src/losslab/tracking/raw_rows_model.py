"""The MLflow model that takes raw rows: a pandas DataFrame with the table's own columns (JSON
records over ``mlflow models serve``) in, the Keras model's probabilities out.

MLflow logs this file as the model's code ("models from code"), so loading the model runs no
pickle: the Keras model loads with ``safe_mode=True`` and the fitted scikit-learn transform
from its skops file, trusting scikit-learn's types and ``numpy.dtype`` only. The file imports
no losslab module, so the logged model needs none.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

KERAS_MODEL = "keras_model"
TRANSFORM = "transform"
TRUSTED = ["numpy.dtype"]  # beyond skops' defaults (scikit-learn's own types)


class RawRowsModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        import keras
        import skops.io

        self.model = keras.saving.load_model(
            context.artifacts[KERAS_MODEL], compile=False, safe_mode=True
        )
        self.transform = skops.io.load(context.artifacts[TRANSFORM], trusted=TRUSTED)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        frame = pd.DataFrame(model_input)
        frame = frame.astype(object).where(frame.notna(), np.nan).infer_objects()  # null: NaN
        x = np.asarray(self.transform.transform(frame), dtype=np.float32)
        return np.asarray(self.model(x, training=False), dtype=np.float64)


mlflow.models.set_model(RawRowsModel())
