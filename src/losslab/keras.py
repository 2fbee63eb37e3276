"""losslab's Keras 3 callback for any training script: ``from losslab.keras import MlflowLogger``.

    with mlflow.start_run():
        model.fit(x, y, validation_data=(x_val, y_val), callbacks=[MlflowLogger()])

Every batch and epoch metric goes to MLflow through a background writer; see
:class:`~losslab.tracking.callback.MlflowLogger` for what it records and its options.
"""

from losslab.tracking.callback import MlflowLogger

__all__ = ["MlflowLogger"]
