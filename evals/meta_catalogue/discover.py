"""Find housekeeping templates in session records that the META rules do not know yet.

``discover_templates(records)`` is a pure function (no I/O): given session records it lists
message openings that many sessions share while the rest of the message (the embedded chat)
differs, and that ``detect_meta`` does not recognise. Each candidate comes with counts and an
example, for a person to check and, if it is a client's task prompt, add to the catalogue
(see README.md, "Adding a template found in the logs").

A record is a session record as ``core/sessions`` writes it (``session_id``,
``route_label`` / ``route``, ``user_query``, ``steps[].messages_sent``), or any mapping with
``messages`` (the request) and ``route``.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.routing.meta import detect_meta

__all__ = ["discover_templates", "record_messages"]

#: Words of a message's opening used to group sessions.
KEY_WORDS = 10
#: A candidate's common opening must be at least this long (characters).
MIN_PREFIX_CHARS = 80
_WORD = re.compile(r"\S+")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p.get("text", "") for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)
        )
    return ""


def record_messages(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request messages of a record: ``messages``, else the first backend call's
    ``messages_sent``, else the logged last user message."""
    msgs = record.get("messages")
    if isinstance(msgs, list) and msgs:
        return [m for m in msgs if isinstance(m, Mapping)]  # type: ignore[misc]
    for step in record.get("steps") or []:
        sent = step.get("messages_sent") if isinstance(step, Mapping) else None
        if isinstance(sent, list) and sent:
            return [m for m in sent if isinstance(m, Mapping)]  # type: ignore[misc]
    query = record.get("user_query")
    return [{"role": "user", "content": query}] if isinstance(query, str) and query else []


def _route(record: Mapping[str, Any]) -> str:
    return str(record.get("route_label") or record.get("route") or "").upper()


def _key(text: str) -> str:
    return " ".join(_WORD.findall(text)[:KEY_WORDS]).lower()


def _common_prefix(texts: Sequence[str]) -> str:
    first, last = min(texts), max(texts)
    n = 0
    for a, b in zip(first, last, strict=False):
        if a != b:
            break
        n += 1
    return first[:n]


def _common_suffix(texts: Sequence[str]) -> str:
    return _common_prefix([t[::-1] for t in texts])[::-1]


def _digest(messages: Sequence[Mapping[str, Any]]) -> str:
    h = hashlib.sha256()
    for m in messages:
        h.update(str(m.get("role")).encode())
        h.update(_text(m.get("content")).encode())
    return h.hexdigest()[:16]


def discover_templates(
    records: Iterable[Mapping[str, Any]],
    min_sessions: int = 3,
    min_variants: int = 2,
    example_chars: int = 1500,
) -> list[dict[str, Any]]:
    """Templates seen repeatedly that the META rules do not recognise.

    Sessions are grouped by the opening words of their last message (``where="last"``) and of
    their first system message (``where="system"``). A group is a candidate when at least
    ``min_sessions`` sessions share an opening of ``MIN_PREFIX_CHARS`` characters or more, and
    at least ``min_variants`` of them differ in the rest of the request (different embedded
    chats: a fixed prompt a client fills, not one person resending a message). Sessions whose
    template is catalogued (``detect_meta`` matched it by a client's exact rule or by
    similarity to the template index) are left out; those caught only by the generic rules are
    listed, with ``detected_as`` (the generic rule's task, or ``None`` if nothing matched),
    because their template is not in the catalogue yet.

    Returns candidates, most sessions first: ``where``, ``sessions``, ``variants``,
    ``common_prefix`` (and ``common_suffix``), ``routes`` (how the sessions were routed) and an
    ``example`` (``session_id`` and the request's messages, each cut to ``example_chars``).
    """
    groups: dict[tuple[str, str], list[tuple[Mapping[str, Any], list[dict[str, Any]], str]]] = defaultdict(
        list
    )
    for record in records:
        messages = record_messages(record)
        if not messages:
            continue
        match = detect_meta(messages)
        if match is not None and not match.rule.startswith("generic."):
            continue  # a catalogued template (exact rule or similarity to the index)
        record = {**record, "_detected": match.task if match else None}
        last = messages[-1]
        if last.get("role") in ("user", "system", "developer"):
            text = _text(last.get("content")).strip()
            if text:
                groups[("last", _key(text))].append((record, messages, text))
        first = messages[0]
        if len(messages) > 1 and first.get("role") in ("system", "developer"):
            text = _text(first.get("content")).strip()
            if text:
                groups[("system", _key(text))].append((record, messages, text))

    out: list[dict[str, Any]] = []
    for (where, _), items in groups.items():
        sessions = {str(r.get("session_id", id(r))) for r, _, _ in items}
        if len(sessions) < min_sessions:
            continue
        variants = {_digest(msgs) for _, msgs, _ in items}
        if len(variants) < min_variants:
            continue
        texts = [t for _, _, t in items]
        prefix = _common_prefix(texts)
        if len(prefix) < MIN_PREFIX_CHARS:
            continue
        record, messages, _ = items[0]
        out.append(
            {
                "where": where,
                "sessions": len(sessions),
                "variants": len(variants),
                "common_prefix": prefix,
                "common_suffix": _common_suffix(texts) if len(set(texts)) > 1 else "",
                "routes": dict(Counter(_route(r) for r, _, _ in items)),
                "detected_as": dict(Counter(str(r.get("_detected")) for r, _, _ in items)),
                "example": {
                    "session_id": record.get("session_id"),
                    "messages": [
                        {"role": m.get("role"), "content": _text(m.get("content"))[:example_chars]}
                        for m in messages
                    ],
                },
            }
        )
    out.sort(key=lambda c: (-c["sessions"], c["where"], c["common_prefix"]))
    return out
