"""losslab's Optuna sweeper for Hydra (``hydra/sweeper=losslab_optuna``)."""
