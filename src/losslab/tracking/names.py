"""Run names a person can tell apart in MLflow's run list, chart legends and child links.

The list shows about 15 characters of a name. A job of a sweep is named by its number and
what it varies (``#3 lr=0.00123 dropout=0.25``), keys cut to their last part where that is
unambiguous, floats to 3 significant digits; the overrides every job shares are left out. A
single run is named by what it changes from the defaults; a sweep's parent by its study.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser

MARKERS = {"FAILED": "failed", "KILLED": "killed", "PRUNED": "pruned"}


def readable_value(text: str) -> str:
    """A value as people read it: floats to 3 significant digits, quotes dropped."""
    try:
        number = float(text)
    except ValueError:
        return text.strip("'\"")
    if number.is_integer() and "." not in text and "e" not in text.lower():
        return text
    return f"{number:.3g}"


def _pair(line: str) -> tuple[str, str]:
    """(key, value) as Hydra reads the override: a job's copy has its colons escaped
    (``http\\://host``), the command line's not; both read the same."""
    try:
        (override,) = OverridesParser.create().parse_overrides([line])
    except Exception:  # not an override Hydra reads back: taken as written
        key, _, value = line.lstrip("+~").partition("=")
        return key, value
    key = override.get_key_element().lstrip("+~")
    if override.is_sweep_override():  # a sweep reads as written: focal,bce
        return key, line.partition("=")[2]
    value = override.value()
    text = value if isinstance(value, str) else override.get_value_element_as_str()
    return key, text


def _shown(overrides: Iterable[str]) -> list[tuple[str, str]]:
    """(key, value) of the overrides a person chose: Hydra's own settings left out."""
    pairs = [_pair(line) for line in overrides]
    return [(k, v) for k, v in pairs if not (k.startswith("hydra.") or k == "hydra")]


def short(overrides: Iterable[str]) -> str:
    """``key=value`` pairs, keys cut to their last part where no other key shares it."""
    pairs = _shown(overrides)
    lasts = [key.rsplit(".", 1)[-1] for key, _ in pairs]
    words = []
    for (key, value), last in zip(pairs, lasts, strict=True):
        name = last if lasts.count(last) == 1 else key
        words.append(f"{name}={readable_value(value)}")
    return " ".join(words)


def shared_overrides(sweep_overrides: Sequence[str]) -> list[str]:
    """The overrides of a sweep's command line that every job shares (not sweeps)."""
    parsed = OverridesParser.create().parse_overrides(list(sweep_overrides))
    return [o.input_line for o in parsed if not o.is_sweep_override()]


def job_name(num: int, overrides: Sequence[str], shared: Iterable[str]) -> str:
    common = {_pair(line) for line in shared}
    return f"#{num} {short(o for o in overrides if _pair(o) not in common)}".rstrip()


def single_name(overrides: Sequence[str]) -> str:
    return short(overrides) or "defaults"


def marked(name: str, outcome: str) -> str:
    """The name with ``[pruned]``, ``[failed]`` or ``[killed]`` in front, as the list shows
    the start of a name."""
    marker = MARKERS.get(outcome)
    return f"[{marker}] {name}" if marker else name
