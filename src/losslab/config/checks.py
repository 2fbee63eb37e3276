"""The checks every schema shares: choices, positive numbers, fractions.

OmegaConf already refuses a wrong type or an unknown :class:`Choice` at composition; these
cover what a type cannot say (ranges, and rules that join two keys).
"""

from __future__ import annotations

import math
from enum import Enum


class ConfigError(ValueError):
    """A config value outside what is allowed; the message names the key and the choices."""


class Choice(str, Enum):
    """A config choice. OmegaConf refuses any other value at composition and lists the
    allowed ones; members compare, hash, print and format as their plain string, so code
    and messages read ``"bce"``, never ``LossPreset.bce``."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


def positive(key: str, value: float | None, *, allow_none: bool = False) -> None:
    """``value`` is a finite number above 0 (or None where ``allow_none``)."""
    if value is None and allow_none:
        return
    if value is None or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{key}={value!r} is not allowed; it must be a finite number > 0")


def at_least(key: str, value: float | None, low: float, *, allow_none: bool = False) -> None:
    """``value`` is at least ``low`` (or None where ``allow_none``)."""
    if value is None and allow_none:
        return
    if value is None or not math.isfinite(value) or value < low:
        suffix = " or null" if allow_none else ""
        raise ConfigError(f"{key}={value!r} is not allowed; it must be >= {low:g}{suffix}")


def fraction(key: str, value: float, *, low_open: bool = True, high_open: bool = True) -> None:
    """``value`` lies in the unit interval, each end open or closed as asked."""
    ok_low = value > 0 if low_open else value >= 0
    ok_high = value < 1 if high_open else value <= 1
    if not (math.isfinite(value) and ok_low and ok_high):
        lo = "(0" if low_open else "[0"
        hi = "1)" if high_open else "1]"
        raise ConfigError(f"{key}={value!r} is not allowed; it must lie in {lo}, {hi}")


def one_of(key: str, value: object, allowed: list[str]) -> None:
    """For the few choices an :class:`Enum` cannot name (``trainer.verbose``: ``0``)."""
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed; choose one of {allowed}")
