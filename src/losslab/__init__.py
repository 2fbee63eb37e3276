"""losslab: Keras classifiers on imbalanced data, composed by Hydra, searched by Optuna,
recorded by MLflow."""

__version__ = "0.1.0"
