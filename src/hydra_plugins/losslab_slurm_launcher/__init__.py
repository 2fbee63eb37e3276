"""losslab's Slurm launcher for Hydra (``hydra/launcher=slurm_gpu``)."""
