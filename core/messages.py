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


# --- images: detected by shape, recorded by type and size only ----------------------------

_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})


def _is_image_part(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") in _IMAGE_PARTS


def has_images(messages: list[Message]) -> bool:
    """Whether any message carries an image part (`image_url` as a data: or http URL).

    The whole conversation counts, not only the last turn: an image pasted earlier is
    still in the history the backend receives, and a text-only model cannot read it.
    """
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(_is_image_part(part) for part in content):
            return True
    return False


def _image_url(part: dict[str, Any]) -> str:
    url = part.get("image_url", part.get("url"))  # chat: {"url": ...}; Responses API: the URL itself
    if isinstance(url, dict):
        url = url.get("url")
    return url if isinstance(url, str) else ""


def describe_image(part: dict[str, Any]) -> str:
    """Say what an image part is without its bytes: `<image: data:image/png, 12345 bytes>`.

    A data: URL gives its media type and decoded size; an http URL gives its scheme and host
    only, since the path or query of a signed URL can be a credential.
    """
    url = _image_url(part)
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media = head[5:].split(";")[0] or "application/octet-stream"
        size = len(data) * 3 // 4 - data[-2:].count("=") if ";base64" in head else len(data)
        return f"<image: data:{media}, {size} bytes>"
    scheme, sep, rest = url.partition("://")
    host = rest.split("/")[0].split("?")[0].rsplit("@", 1)[-1]
    return f"<image: {scheme}://{host}/…>" if sep else "<image: unknown source>"


def redact_images(messages: list[Message]) -> list[Message]:
    """The conversation with each image part replaced by its description (for logs, traces).

    Returns `messages` itself when it has no image, so the common case copies nothing.
    """
    if not has_images(messages):
        return messages
    out: list[Message] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(_is_image_part(part) for part in content):
            parts = [
                {"type": "image_url", "image_url": {"url": describe_image(part)}}
                if _is_image_part(part) else part
                for part in content
            ]
            message = {**message, "content": parts}
        out.append(message)
    return out


# --- tool loops ------------------------------------------------------------------------------

def pending_tool_call_ids(messages: list[Message]) -> list[str]:
    """Ids of the tool calls the model made since the human's last message, newest first.

    Non-empty means the request continues a tool loop: after the human's ask the model
    called tools, and the client now sends their results back.
    """
    start = last_user_index(messages)
    ids: list[str] = []
    for message in reversed(messages[(start or 0) + (start is not None):]):
        if message.get("role") == "tool" and isinstance(message.get("tool_call_id"), str):
            ids.append(message["tool_call_id"])
        if message.get("role") == "assistant":
            ids.extend(
                call["id"] for call in message.get("tool_calls") or ()
                if isinstance(call, dict) and isinstance(call.get("id"), str)
            )
    return ids
