"""What ``losslab sweep`` picks from the data when the command line does not say.

A search is only as good as the protocol around it: the model family must fit the data
(convolutions for images), and with few minority samples one validation split judges on too
few of them, so the folds are chosen from the minority count and the validation floor. The
picks are overrides placed before the user's own, so any of them given on the command line
wins; they are printed, so the command says what it ran.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_FOLDS = 3


def folds_for(n_minority: int, floor: int) -> int:
    """As many folds as leave ``floor`` minority samples in each validation part and in its
    training part, at most :data:`MAX_FOLDS`; 1 (one split) when two would not."""
    for k in range(min(MAX_FOLDS, n_minority // max(floor, 1)), 1, -1):
        if n_minority - -(-n_minority // k) >= floor:  # the largest validation part aside
            return k
    return 1


def picks(args: Sequence[str]) -> list[str]:
    """Overrides for the model and the folds, for what ``args`` leave open."""
    from losslab.composition import compose
    from losslab.config import IMAGE_SOURCES

    given = {a.split("=", 1)[0].lstrip("+~") for a in args if "=" in a}
    cfg = compose([a for a in args if "=" in a and not a.startswith("hydra")])
    chosen = []
    if "model" not in given and cfg.data.source in IMAGE_SOURCES:
        chosen.append("model=cnn")
    n_minority = cfg.data.get("n_minority")
    if "data.folds" not in given and isinstance(n_minority, int):
        chosen.append(f"data.folds={folds_for(n_minority, cfg.data.min_val_minority)}")
    return chosen
