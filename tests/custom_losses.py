"""A user loss for the tests: a Keras Loss subclass with its own arguments, not registered."""

import keras
from keras import ops


class AsymmetricLoss(keras.losses.Loss):
    """Cross-entropy with separate weights for the positive (alpha) and negative (beta) terms."""

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, name: str = "asymmetric", **kw):
        super().__init__(name=name, **kw)
        self.alpha = alpha
        self.beta = beta

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
        return -ops.mean(
            self.alpha * y_true * ops.log(p) + self.beta * (1 - y_true) * ops.log(1 - p), axis=-1
        )

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}


def nan_loss(y_true, y_pred):
    """A loss that diverges at once, to check that NaN stops training and fails the run."""
    return ops.mean(y_pred, axis=-1) * float("nan")
