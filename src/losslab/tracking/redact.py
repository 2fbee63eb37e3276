"""Keep secrets out of params, tags and config artifacts.

A value is hidden when its key names a secret (password, token, ...) or when it is a URL
with a password (``postgresql://user:pw@host/db``); the rest of the URL stays readable.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
SECRET_KEY = re.compile(r"(pass(word|wd)?|secret|token|api[_-]?key|credential|auth)", re.I)
URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)(?=@)", re.I)
QUERY_SECRET = re.compile(r"(?P<head>[?&](password|token|secret|api[_-]?key)=)[^&\s]+", re.I)


def redact_text(text: str) -> str:
    """Mask passwords in URLs and secret query parameters anywhere in ``text``."""
    text = URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    return QUERY_SECRET.sub(lambda m: m.group("head") + MASK, text)


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
