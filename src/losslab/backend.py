"""Starting Keras (and TensorFlow under it) without its start-up noise on the terminal.

TensorFlow's C++ runtime writes its start-up lines (oneDNN, CUDA probing, CPU features, and
an error-level "failed call to cuInit" on a machine without a GPU) straight to file
descriptor 2, before Python's logging exists; ``TF_CPP_MIN_LOG_LEVEL`` cannot silence the
ones written before absl's ``InitializeLog``. :func:`start` holds descriptor 2 while the
backend imports and finds its devices, and passes on every line that is not that noise.
``TF_CPP_MIN_LOG_LEVEL=0`` (TensorFlow's "show everything") shows it all, also the retracing
warnings a sweep's jobs would otherwise repeat.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile

NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IW]\d{4} \d\d:\d\d:\d\d"
    r"|E\d{4} .*(failed call to cuInit|Unable to register cu)"
    r"|To enable the following instructions:)"
)
_started = False


def _quiet_wanted() -> bool:
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "0"


def start() -> None:
    """Import Keras and let TensorFlow find its devices, showing only lines that matter."""
    global _started
    if _started:
        return
    if not _quiet_wanted():
        _import()
        _started = True
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            _import()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            _pass_on(held.read().decode(errors="replace"))
    logging.getLogger("tensorflow").addFilter(_not_retracing)
    _started = True


def _import() -> None:
    """Keras, and TensorFlow on every backend: losslab's input pipelines (``tf.data``) and
    MLflow's model flavour use it under JAX and PyTorch too."""
    import keras  # noqa: F401 - its backend starts here
    import tensorflow as tf

    tf.config.list_physical_devices()  # the device probe writes its lines now


def _not_retracing(record: logging.LogRecord) -> bool:
    """Drop TensorFlow's "triggered tf.function retracing" warning: a sweep builds a new
    model, with new functions, in every job of one process, which is what it counts."""
    return "triggered tf.function retracing" not in record.getMessage()


def _pass_on(text: str) -> None:
    kept = [line for line in text.splitlines() if line.strip() and not NOISE.match(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr)
