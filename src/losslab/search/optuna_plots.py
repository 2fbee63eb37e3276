"""Optuna's matplotlib plots saved as PNG for a sweep's parent run.

Optuna draws them (importances, Pareto front); what they share here is the rest: the Agg
backend, silence about their being experimental, a plot skipped with one log line when the
study cannot give it (too few trials, one objective), and the figure closed once saved.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def save(draw: Callable[[], Any], path: Path, name: str) -> Path | None:
    """``draw()`` (an Optuna plot function call returning its axes) saved to ``path``; None
    when Optuna cannot draw it for this study."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            axes = draw()
    except (ValueError, RuntimeError, ZeroDivisionError) as err:
        log.info("optuna %s plot skipped: %s", name, err)
        return None
    axes.figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(axes.figure)
    return path
