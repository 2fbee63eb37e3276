"""The config groups Hydra composes (``train.yaml`` and one folder per group).

A package, so Hydra finds them through the import system (``pkg://losslab.conf``) wherever
losslab is installed; nothing here is Python but this file.
"""
