"""The router's own log: one handler, and a filter that removes secrets from every line."""

from __future__ import annotations

import logging

from core.redact import redact


class RedactingFilter(logging.Filter):
    """Rewrite each record's message with secrets and key-shaped strings removed."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the formatted message in place; never drop a record."""
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(level: str) -> None:
    """Send `ai_router.*` logs to stderr at `level`, redacted (idempotent)."""
    logger = logging.getLogger("ai_router")
    logger.setLevel(level.upper())
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        handler.addFilter(RedactingFilter())
        logger.addHandler(handler)
        logger.propagate = False
