"""A model's scores on arrays held in memory, without Keras' input pipeline.

``model.predict`` wraps its input in a new ``tf.data`` pipeline on every call and traces that
pipeline's slicing functions each time: most of the cost of scoring a validation split of a
few hundred rows, which a job does after every epoch (the objective's validation figure) and
again at its end. ``predict_on_batch`` on slices of the arrays runs the same compiled
prediction on the same batches, with none of that.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

BATCH = 4096  # rows scored at once: bounded memory for a CNN's activations


def scores(model: Any, x: Any, batch_size: int = BATCH) -> np.ndarray:
    """``model.predict(x, batch_size=batch_size)``'s scores (and none for no rows, where
    ``predict`` fails); ``x`` an array or a structure of arrays (a model of several inputs),
    each with one row per sample."""
    rows = len(keras.tree.flatten(x)[0])
    parts = []
    for start in range(0, max(rows, 1), batch_size):  # no rows: no scores, of their shape
        batch = keras.tree.map_structure(lambda a, s=start: a[s : s + batch_size], x)
        parts.append(np.asarray(model.predict_on_batch(batch)))
    return np.concatenate(parts)
