"""The text a META rule reads: the examined message and the first system message, windowed.

Every rule (`meta_clients`, `meta_generic`) looks at a `MetaText`, built once per request
by `meta.detect_meta`, and answers a `MetaMatch` or None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Characters read from the start of the examined message. Every known template
#: has its instructions within the first ~2 KB.
HEAD_CHARS = 4096
#: Characters read from the end of the examined message (the part after a long
#: inlined history: Open WebUI's autocomplete ``<text>``, the closing tag).
TAIL_CHARS = 1024
#: Characters read from the start of the first system message; its end
#: (``TAIL_CHARS``) is read as well, since a tool list can push a template's
#: output contract far down.
SYSTEM_HEAD_CHARS = 2048


@dataclass(frozen=True)
class MetaMatch:
    """A recognised housekeeping request.

    Attributes:
        rule: Which rule fired, ``"<client>.<what>"``, e.g. ``"openwebui.title"``,
            ``"librechat.title"``, ``"lobechat.topic_title"``.
        task: The kind of task: ``"title"``, ``"tags"``, ``"follow_ups"``,
            ``"queries"``, ``"autocomplete"``, ``"emoji"``, ``"image_prompt"``,
            ``"summary"``, ``"tool_selection"`` (a tool or route choice), ``"language"``
            or ``"emotion"``.
    """

    rule: str
    task: str


# --------------------------------------------------------------------------
# Text extraction
# --------------------------------------------------------------------------


def content_text(content: Any) -> str:
    """Return the text of an OpenAI message ``content`` (string or parts list).

    Non-text parts (images, audio, files) are skipped: the rules only read text.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, Mapping):
                if part.get("type") == "text":
                    text = part.get("text")
                    if isinstance(text, str):
                        texts.append(text)
            elif isinstance(part, str):  # tolerated by several SDKs
                texts.append(part)
        return "\n".join(texts)
    return ""


def window(text: str, head: int, tail: int) -> str:
    """Keep the first ``head`` and last ``tail`` characters of ``text``.

    Joined with a newline so the tail's first line still starts a line for the
    ``(?m)^`` patterns.
    """
    if len(text) <= head + tail:
        return text
    return text[:head] + "\n" + text[-tail:]


class MetaText:
    """The parts of a request the rules look at, computed once per request."""

    __slots__ = ("text", "low", "sys_low", "n_messages")

    def __init__(self, text: str, sys_text: str, n_messages: int) -> None:
        """Keep the windowed texts and their lower-case forms."""
        self.text = text  # examined (last) message, windowed, original case
        self.low = text.lower()
        self.sys_low = sys_text.lower()  # first system message, windowed; "" if none
        self.n_messages = n_messages
