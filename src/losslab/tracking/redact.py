"""Keep secrets out of params, tags and config artifacts.

A value is hidden when its key names a secret (password, token, ...), when it is a URL
with a password (``postgresql://user:pw@host/db``; the rest of the URL stays readable), or
when it holds the value of an environment variable whose name names a secret
(``${oc.env:GITHUB_TOKEN}`` under any key).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

MASK = "***"
# the words that make a key a secret's, wherever keys are matched
SECRET_WORDS = r"pass(?:word|wd)?|secret|token|api[_-]?key|credential|auth"
SECRET_KEY = re.compile(SECRET_WORDS, re.I)
# colons may come escaped ("\:"), as Hydra writes overrides back. Both patterns are linear in
# the text: tried at every position of a long run of letters, an unbounded scheme would be
# scanned again from each (quadratic: 79 s for a 9,000-character tag), so a scheme is at most
# 40 characters, and a secret's key starts where a run of key characters starts.
URL_PASSWORD = re.compile(
    r"(?P<head>[a-z][a-z0-9+.\-]{0,40}\\*://[^:/@\s\\]+\\*:)(?P<pw>[^@\s]+)(?=@)", re.I
)
# key=value whose key names a secret: an override (+tags.api_token=...), a setting
# (db.password=...) or a query parameter (?token=...&); a quote or bracket ends it in a
# Python list of overrides
KEY_VALUE_SECRET = re.compile(
    rf"(?<![\w.+~-])(?P<head>[\w.+~-]*(?:{SECRET_WORDS})\w*=)[^\s'\"\]&]+", re.I
)


MIN_SECRET_LENGTH = 6  # shorter values ("1", "true") would mask ordinary text


def environment_snapshot() -> dict[str, str]:
    """A copy of ``os.environ`` that other threads cannot break.

    Iterating ``os.environ`` reads each key back by name; when another thread deletes a
    variable meanwhile (MLflow's telemetry thread drops ``_MLFLOW_TELEMETRY_SESSION_ID``
    whenever it cannot reach its endpoint) the read raises ``KeyError``. A retry sees the
    environment without it.
    """
    while True:
        try:
            return dict(os.environ.items())
        except KeyError:
            continue


def secret_env_values() -> list[str]:
    """Values of environment variables named like secrets, longest first."""
    values = {
        value
        for name, value in environment_snapshot().items()
        if SECRET_KEY.search(name) and len(value) >= MIN_SECRET_LENGTH
    }
    return sorted(values, key=len, reverse=True)


def redact_text(text: str) -> str:
    """Mask passwords in URLs, values of keys named like secrets (``api_token=...``, query
    parameters included) and secret environment values."""
    for value in secret_env_values():
        text = text.replace(value, MASK)
    text = URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    return KEY_VALUE_SECRET.sub(lambda m: m.group("head") + MASK, text)


def redact(key: str, value: Any) -> Any:
    """The value to record for ``key``."""
    leaf = key.rsplit(".", 1)[-1]
    if SECRET_KEY.search(leaf) and value not in (None, "", False):
        return MASK
    return redact_text(value) if isinstance(value, str) else value


def redact_tree(node: Any, prefix: str = "") -> Any:
    """A copy of nested dicts/lists with every secret masked."""
    if isinstance(node, dict):
        return {
            k: redact_tree(v, f"{prefix}{k}.")
            if isinstance(v, (dict, list))
            else redact(f"{prefix}{k}", v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [redact_tree(v, prefix) for v in node]
    return redact(prefix.rstrip("."), node)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay whole values."""
    if not isinstance(node, dict):
        return {prefix.rstrip("."): node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(
            flatten(value, f"{prefix}{key}.")
            if isinstance(value, dict) and value
            else {f"{prefix}{key}": value}
        )
    return out


class RedactFilter(logging.Filter):
    """Masks secrets in every record a handler writes (Hydra lists each job's overrides)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class RedactingStream:
    """``sys.stdout``/``sys.stderr`` with secrets masked in every write: the last guard for
    text that libraries print themselves (Hydra writes a failed job's overrides to stderr
    before raising its error). Everything else is the wrapped stream's."""

    def __init__(self, stream: Any) -> None:
        self.wrapped = stream

    def write(self, text: str) -> int:
        self.wrapped.write(redact_text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)
