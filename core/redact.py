"""Remove secrets from text before it reaches a log, a trace, a session file or an error.

Configured keys are removed by value; anything shaped like a key (`sk-…`, `xai-…`,
`Bearer …`) by pattern, so a key the router never saw (a client's) is caught too.
"""

from __future__ import annotations

import re
from typing import Any

_KEY_SHAPES = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"
    r"|\b(?:sk|xai)-[A-Za-z0-9_-]{6,}"
)
_known_secrets: set[str] = set()

REDACTED = "[REDACTED]"


def register_secret(value: str | None) -> None:
    """Remember a configured secret so that `redact` removes it wherever it appears."""
    if value and len(value) >= 4:
        _known_secrets.add(value)


def known_secrets() -> list[str]:
    """The secrets registered so far (to hand to a writer process)."""
    return sorted(_known_secrets)


def redact(text: str) -> str:
    """Return `text` with known secrets and key-shaped strings replaced by `[REDACTED]`."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _KEY_SHAPES.sub(lambda m: (m.group(1) or "") + REDACTED, text)


def redact_value(value: Any) -> Any:
    """Redact every string inside a JSON-like value (dicts, lists, strings)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    return value
