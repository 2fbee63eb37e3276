"""What a run prints while it trains: one short line per epoch with the figures that judge
the minority class.

Keras' own epoch line (``verbose=2``) lists every metric, about 400 characters, with counts as
floats (``fp: 0.0000e+00``); its progress bar (``verbose=1``) writes control codes into a log
file. :class:`EpochLine` prints the losses, the objective, recall at the fixed false-positive
rate, precision and recall, and the validation counts as integers, within 160 characters.
``trainer.verbose=1`` or ``2`` still gives Keras' own output.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import keras

COUNTS = ("tp", "fp", "fn", "tn")
MAX_CHARS = 160


def _number(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:.4g}"


class EpochLine(keras.callbacks.Callback):
    """``epoch 3/20 | loss 0.412 val 0.398 | val pr_auc 0.912 ... | tp 7 fp 2 fn 3 tn 28 | 0.2s``
    (validation counts)."""

    def __init__(self, epochs: int, keys: Sequence[str], prefix: str = "") -> None:
        super().__init__()
        self.epochs, self.keys, self.prefix = epochs, list(keys), prefix
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        parts = [f"{self.prefix}epoch {epoch + 1}/{self.epochs}"]
        if "loss" in logs:
            val = f" val {_number(logs['val_loss'])}" if "val_loss" in logs else ""
            parts.append(f"loss {_number(logs['loss'])}{val}")
        shown = [f"{k[4:]} {_number(logs[k])}" for k in self.keys if k in logs]
        if shown:
            parts.append("val " + " ".join(shown))
        counts = [f"{c} {int(round(logs[f'val_{c}']))}" for c in COUNTS if f"val_{c}" in logs]
        if counts:
            parts.append(" ".join(counts))
        parts.append(f"{time.perf_counter() - self._started:.1f}s")
        print(" | ".join(parts)[:MAX_CHARS], file=sys.stdout, flush=True)


def epoch_keys(objective: str) -> list[str]:
    """The validation figures an epoch line shows, the objective first."""
    keys = [objective, "val_recall_at_fpr", "val_precision", "val_recall", "val_pr_auc"]
    return list(dict.fromkeys(k for k in keys if k.startswith("val_")))
