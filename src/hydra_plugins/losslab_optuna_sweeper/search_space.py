"""The published hydra-optuna-sweeper's search-space syntax, turned into Optuna distributions.

``interval(a, b)`` is a float (or int) range, ``range(a, b[, step])`` a stepped one (both
ends included, unlike Hydra's basic sweeper), ``choice(x, y, ..)`` and ``shuffle(...)`` a
categorical, and ``tag(log, ...)`` samples on a log scale. Any other value is a fixed override
passed to every job.
"""

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)

# Optuna is imported when a sweep starts, not when Hydra scans plugins; no postponed
# annotations either: Hydra's scan runs this module before it is in sys.modules, where
# dataclasses cannot resolve them.
if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import Trial


class SearchSpaceError(ValueError):
    """A search-space entry that cannot be searched."""


@dataclass
class SearchSpace:
    distributions: dict[str, "BaseDistribution"] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)  # overrides as written, e.g. "trainer.epochs=5"


def _interval(key: str, sweep: IntervalSweep, log: bool) -> "BaseDistribution":
    from optuna.distributions import FloatDistribution, IntDistribution

    low, high = sweep.start, sweep.end
    if low is None or high is None or low >= high:
        raise SearchSpaceError(f"{key}=interval({low}, {high}) is empty: the start must be < end")
    if log and low <= 0:
        raise SearchSpaceError(f"{key}: tag(log, interval({low}, {high})) needs a start > 0")
    if isinstance(low, int) and isinstance(high, int):
        return IntDistribution(low, high, log=log)
    return FloatDistribution(float(low), float(high), log=log)


def _range(key: str, sweep: RangeSweep, log: bool) -> "BaseDistribution":
    """Both ends included, as in the published plugin (``range(16, 64, 16)`` holds 64); a
    descending range is the same set of values."""
    from optuna.distributions import FloatDistribution, IntDistribution

    start, stop, step = sweep.start, sweep.stop, sweep.step or 1
    span = (stop - start) / step if step else -1.0
    count = math.floor(span + 1e-9) + 1 if span >= 0 else 0
    if count < 1:
        raise SearchSpaceError(f"{key}=range({sweep.start}, {sweep.stop}, {sweep.step}) is empty")
    last = start + (count - 1) * step
    integers = all(isinstance(v, int) for v in (start, stop, step))
    if not integers:
        last = round(last, 12)  # 0.1 * 3 is 0.30000000000000004
    if step < 0:  # the same values, counted up from the last one
        start, last, step = last, start, -step
    if integers:
        return IntDistribution(start, last, step=1 if log else step, log=log)
    return FloatDistribution(float(start), float(last), step=None if log else step, log=log)


def _shuffled(override: Override) -> "BaseDistribution":
    """``shuffle(...)``: a categorical of the values Hydra's own sweep of it would take (for
    ``shuffle(range(a, b))`` Python's range, end excluded), as the published plugin has it;
    sorted, so that every command draws from the same distribution."""
    from optuna.distributions import CategoricalDistribution

    values = list(override.sweep_iterator(transformer=Transformer.encode))
    if not values:
        raise SearchSpaceError(f"{override.input_line} is empty: give at least one value")
    return CategoricalDistribution(sorted(values, key=lambda v: (str(type(v)), v)))


def distribution(override: Override) -> "BaseDistribution":
    key = override.get_key_element()
    sweep = override.value()
    log = "log" in getattr(sweep, "tags", set())
    if getattr(sweep, "shuffle", False):
        return _shuffled(override)
    if isinstance(sweep, ChoiceSweep):
        from optuna.distributions import CategoricalDistribution

        if not sweep.list:
            raise SearchSpaceError(f"{key}=choice() is empty: give at least one value")
        return CategoricalDistribution(list(sweep.list))
    if isinstance(sweep, IntervalSweep):
        return _interval(key, sweep, log)
    if isinstance(sweep, RangeSweep):
        return _range(key, sweep, log)
    raise SearchSpaceError(f"{key}: {type(sweep).__name__} cannot be searched by Optuna")


def parse(params: Mapping[str, str] | None, arguments: Iterable[str]) -> SearchSpace:
    """``hydra.sweeper.params`` first, then command-line overrides, which win."""
    lines = [f"{key}={value}" for key, value in (params or {}).items()]
    space = SearchSpace()
    for override in OverridesParser.create().parse_overrides([*lines, *arguments]):
        key = override.get_key_element()
        space.distributions.pop(key, None)
        space.fixed = [f for f in space.fixed if f.split("=", 1)[0] != key]
        if override.is_sweep_override():
            space.distributions[key] = distribution(override)
        else:
            space.fixed.append(override.input_line)
    return space


def override_value(value: object) -> str:
    """A value as Hydra's override grammar reads it back; strings are quoted to stay strings.

    In a quoted string Hydra unescapes backslashes only where they precede a quote or end the
    string, so only those are doubled, and then the quotes escaped.
    """
    if isinstance(value, str):
        escaped = re.sub(r"(\\+)(?='|$)", r"\1\1", value).replace("'", "\\'")
        return f"'{escaped}'"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


def as_override(key: str, value: object) -> str:
    return f"{key}={override_value(value)}"


def from_distribution_config(key: str, node: Mapping) -> str:
    """An entry of the deprecated ``search_space`` node (``type: float``, ``low``, ``high``,
    ``log``, ``step``, ``choices``) in the ``params`` syntax that means the same."""
    kind = str(node.get("type", ""))
    kind = kind.rsplit(".", 1)[-1]  # DistributionType.float as its name
    if kind == "categorical":
        return f"choice({', '.join(override_value(v) for v in node.get('choices') or [])})"
    if kind not in ("int", "float"):
        raise SearchSpaceError(f"search_space.{key}.type={kind!r}: use int, float or categorical")
    low, high, step = node.get("low"), node.get("high"), node.get("step")
    if kind == "int":
        low, high = int(low), int(high)
        step = int(step) if step is not None else None
    if node.get("log"):  # Hydra reads interval() ends as floats, range() ends as given
        return f"tag(log, {'range' if kind == 'int' else 'interval'}({low}, {high}))"
    if step is not None:
        return f"range({low}, {high}, {step})"
    return f"interval({low}, {high})" if kind == "float" else f"range({low}, {high}, 1)"


def suggest(trial: "Trial", key: str, dist: "BaseDistribution") -> object:
    """``trial.suggest_*`` for a distribution: Optuna's public way to draw one param."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(key, list(dist.choices))
    suggest_number = trial.suggest_int if isinstance(dist, IntDistribution) else trial.suggest_float
    return suggest_number(key, dist.low, dist.high, step=dist.step, log=dist.log)
