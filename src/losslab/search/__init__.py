"""Optuna studies for losslab sweeps: storages, the job's view of its trial, study reports."""
