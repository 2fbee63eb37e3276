"""The parent run of a multirun, shared with its jobs through the sweep folder.

The parent's id is written to ``<sweep dir>/mlflow_parent_run_id``; jobs read it there, which
works for launchers that run jobs in other processes or on other machines of a shared file
system (joblib, submitit, Slurm) without relying on inherited environment variables.
"""

from __future__ import annotations

from pathlib import Path

PARENT_FILE = "mlflow_parent_run_id"


def write_parent_id(sweep_dir: str | Path, run_id: str) -> Path:
    path = Path(sweep_dir) / PARENT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id)
    return path


def read_parent_id(sweep_dir: str | Path) -> str | None:
    path = Path(sweep_dir) / PARENT_FILE
    return path.read_text().strip() if path.is_file() else None
