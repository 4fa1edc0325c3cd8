"""Record one backend call as a session step."""

from __future__ import annotations

import time
from typing import Any

from core.backends.client import Backend, BackendError, elapsed_ms
from core.messages import redact_images


def step_record(
    node: str,
    backend: Backend,
    path: str,
    sent: Any,
    started: float,
    *,
    content: str | None = None,
    reasoning: str | None = None,
    usage: dict[str, Any] | None = None,
    model: str | None = None,
    error: BackendError | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Describe one call: who was asked what, what came back, how long it took.

    Images in `sent` are recorded by type and size only (`redact_images`), never their bytes.
    """
    duration_ms = elapsed_ms(started)
    record: dict[str, Any] = {
        "node": node,
        "started_at": round(time.time() - duration_ms / 1000, 6),
        "provider": backend.name,
        "url": backend.url(path),
        "model": backend.model,
        "served_model": model,
        "messages_sent": redact_images(sent) if isinstance(sent, list) else sent,
        "response_content": content,
        "reasoning_content": reasoning,
        "usage": usage,
        "duration_ms": duration_ms,
        "status": "error" if error else "ok",
        "error": error.message if error else None,
    }
    if extra:
        record.update(extra)
    return record


def overhead_ms(state: dict[str, Any], total_ms: float) -> float:
    """The router's own share of a request's time: the total less its backend calls."""
    return round(total_ms - sum(step.get("duration_ms") or 0 for step in state.get("steps") or []), 2)
