"""Read OpenAI chat messages: their text, the human's last ask, a bounded history."""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]


def message_text(message: Message) -> str:
    """Return the text of a message: its string content, or its text parts joined."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        )
    return ""


def last_user_index(messages: list[Message]) -> int | None:
    """Index of the last message written by the human (role `user`), if any."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "user":
            return index
    return None


def last_user_text(messages: list[Message]) -> str:
    """The text of the human's last message ('' when there is none)."""
    index = last_user_index(messages)
    return message_text(messages[index]) if index is not None else ""


def clip(text: str, limit: int) -> str:
    """Shorten `text` to at most `limit` characters, keeping its head and tail."""
    if len(text) <= limit:
        return text
    if limit < 20:
        return text[:limit]
    head = limit * 2 // 3
    tail = limit - head - 5
    return f"{text[:head]} [\u2026] {text[-tail:]}" if tail > 0 else text[:limit]


def routing_view(messages: list[Message], budget: int) -> tuple[str, str]:
    """Return (query, history) as the classifier sees them, within `budget` characters.

    The query is the human's last message. History is the earlier user and assistant
    turns, newest first until the budget is spent, then put back in order. Tool calls,
    tool results and system prompts are left out: the route follows the human's ask,
    not a harness's boilerplate or a tool's output.
    """
    index = last_user_index(messages)
    if index is None:
        return "", ""
    query = clip(message_text(messages[index]).strip(), budget)
    remaining = budget - len(query)
    lines: list[str] = []
    for message in reversed(messages[:index]):
        if remaining <= 0:
            break
        role = message.get("role")
        if role not in ("user", "assistant"):
            continue
        text = message_text(message).strip()
        if not text:
            continue
        line = f"{role.upper()}: {clip(text, max(remaining - len(role) - 2, 0))}"
        lines.append(line)
        remaining -= len(line) + 1
    return query, "\n".join(reversed(lines))
