"""Build a session record (one JSON document per request) from what a request left behind.

Records are built in the writer thread, not on the request path: the request hands over
references to its state and this module shapes, trims and describes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.messages import describe_image, last_user_text, message_text
from core.state import ROUTER_REQUEST_FIELDS

SCHEMA_VERSION = 1
USER_QUERY_CHARS = 500



@dataclass
class SessionData:
    """Everything a finished request hands to the writer (references, no copies)."""

    session_id: str
    started_at: float
    """Wall-clock start (epoch seconds)."""
    endpoint: str
    user_agent: str | None
    body: dict[str, Any] | None
    state: dict[str, Any]
    total_ms: float
    status_code: int
    error: str | None
    stream: bool = False
    dry_run: bool = False
    ttft_ms: float | None = None
    node_times: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)
    """(node name, epoch seconds when its update arrived, the update), in order."""
    prompt_version: str = ""
    trace_id: str | None = None
    client_key: str = "anonymous"
    """Who sent it, as usage counts clients (`core.http.keys.Keys.client_name`)."""
    synthetic: bool = False
    """Test or benchmark traffic: kept out of datasets, labels and training."""
    overhead_ms: float | None = None
    usage: dict[str, Any] | None = None
    """Tokens and cost of the request (`core.usage.RequestUsage.as_record`)."""


def describe_part(part: Any) -> Any:
    """A content part as the record keeps it: text as is, media by type and size only.

    Images are described by `describe_image` (media type and size of a data: URL, scheme
    and host of a link, whose path or query may be a credential).
    """
    if not isinstance(part, dict) or part.get("type") in ("text", "input_text"):
        return part
    if part.get("type") in ("image_url", "input_image"):
        return {"type": part["type"], "image_url": {"url": describe_image(part)}}
    return {"type": part.get("type", "unknown")}


def shape_messages(messages: Any, mode: str, limit: int) -> Any:
    """Messages as the content mode allows: full, truncated text, or sizes only."""
    if not isinstance(messages, list):
        return messages
    shaped = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        if mode == "none":
            shaped.append({"role": message.get("role"), "chars": len(message_text(message))})
            continue
        item = dict(message)
        content = item.get("content")
        if isinstance(content, list):
            item["content"] = [describe_part(p) for p in content]
            if mode == "truncated":
                item["content"] = [
                    {**p, "text": _clip(p.get("text"), limit)} if isinstance(p, dict) and "text" in p else p
                    for p in item["content"]
                ]
        elif isinstance(content, str) and mode == "truncated":
            item["content"] = _clip(content, limit)
        shaped.append(item)
    return shaped


def _clip(text: Any, limit: int) -> Any:
    if isinstance(text, str) and len(text) > limit:
        return text[:limit] + f"[\u2026 {len(text) - limit} more chars]"
    return text


def _text(value: Any, mode: str, limit: int) -> Any:
    if mode == "none":
        return None
    return _clip(value, limit) if mode == "truncated" else value


def shape_step(step: dict[str, Any], mode: str, limit: int) -> dict[str, Any]:
    """One backend call as the record keeps it."""
    shaped = dict(step)
    shaped["messages_sent"] = shape_messages(step.get("messages_sent"), mode, limit)
    for key in ("response_content", "reasoning_content"):
        value = step.get(key)
        if mode == "none" and isinstance(value, str):
            shaped[f"{key.split('_')[0]}_chars"] = len(value)
        shaped[key] = _text(value, mode, limit)
    return shaped


def iso(epoch: float, tz: str) -> str:
    """ISO 8601 time of `epoch` in time zone `tz`."""
    return datetime.fromtimestamp(epoch, ZoneInfo(tz)).isoformat(timespec="milliseconds")


def utc_stamp(epoch: float) -> str:
    """A sortable UTC stamp for file names: 20261125T145409.736048Z."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def build_record(data: SessionData, *, tz: str, mode: str, limit: int) -> dict[str, Any]:
    """The session record, as the JSON schema `session.schema.json` describes it."""
    state = data.state
    body = data.body if isinstance(data.body, dict) else {}
    sent = body.get("messages")
    messages: list[Any] = sent if isinstance(sent, list) else []
    query = last_user_text(messages) if messages else ""
    label = state.get("route")
    steps = [shape_step(s, mode, limit) for s in state.get("steps") or []]
    return {
        "schema_version": SCHEMA_VERSION,
        "session_id": data.session_id,
        "timestamp": iso(data.started_at, tz),
        "endpoint": data.endpoint,
        "dry_run": data.dry_run,
        "stream": data.stream,
        "user_query": None if mode == "none" else query[:USER_QUERY_CHARS],
        "user_query_chars": len(query),
        "message_count": len(messages),
        "route": "router" if data.dry_run else state.get("path") or "router",
        "route_label": label,
        "route_reason": state.get("route_reason"),
        "backend": state.get("backend"),
        "served_model": state.get("served_model"),
        "degraded": state.get("degraded"),
        "classification_raw": state.get("classification_raw"),
        "classification_ms": state.get("classification_ms"),
        "local_classification": state.get("local_classification"),
        "enrichment": _text(state.get("enrichment"), mode, limit),
        "citations": state.get("citations") or [],
        "steps": steps,
        "total_ms": data.total_ms,
        "ttft_ms": data.ttft_ms,
        "status_code": data.status_code,
        "error": data.error,
        "client": {
            "user_agent": data.user_agent,
            "task": state.get("meta_task"),
            "key": data.client_key,
        },
        "synthetic": data.synthetic,
        "overhead_ms": data.overhead_ms,
        "usage": data.usage,
        "params": {k: v for k, v in body.items() if k != "messages" and k not in ROUTER_REQUEST_FIELDS},
        "prompt_version": data.prompt_version,
        "trace_id": data.trace_id,
        "content_mode": mode,
        "feedback": [],
    }
