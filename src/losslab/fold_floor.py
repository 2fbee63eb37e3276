"""Before a sweep's first trial: the data can be split as the sweep asks.

Every trial of a sweep splits the same data into the same folds (the split depends on the
data and the seed, not on the trial), so a fold that cannot hold ``data.min_val_minority``
minority samples, or validation too small for ``evaluation.threshold=fpr_bound`` to certify
its rate, fails every trial alike, one after another. Loading the data once before the parent
run exists refuses the sweep at once instead, naming the largest ``data.folds`` that works or
the majority count the bound needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from losslab.config import ConfigError, TrainConfig
from losslab.data.dataset import DataError


def varies_the_data(swept: Iterable[str]) -> bool:
    """Whether a trial's own overrides can change the data or its split."""
    return any(key == "seed" or key.startswith(("data.", "data=", "+data")) for key in swept)


def check(conf: TrainConfig) -> None:
    """The folds ``conf`` asks for hold the validation floor (a ConfigError naming the
    largest number of folds that does, otherwise) and enough majority samples for the
    threshold rule to certify its rate (an EvaluationError with the counts)."""
    from losslab import data
    from losslab.evaluate import check_certifiable

    ds = data.load(conf.data, conf.seed, Path(conf.paths.root_dir))
    try:
        folds = data.folds(ds, conf.data, conf.seed)
    except DataError as err:
        works = _largest_folds(ds, conf)
        raise ConfigError(
            f"data.folds={conf.data.folds}: every trial splits alike and would fail: {err}; "
            f"data.folds={works} is the largest that works"
        ) from None
    if ds.task == "binary":
        check_certifiable([fold.y_val for fold in folds], conf.evaluation)


def _largest_folds(ds, conf: TrainConfig) -> int:
    import dataclasses

    from losslab import data

    for k in range(conf.data.folds - 1, 1, -1):
        try:
            data.folds(ds, dataclasses.replace(conf.data, folds=k), conf.seed)
            return k
        except DataError:
            continue
    return 1  # the single split: data.load has already held it to the floor
