"""Assemble streamed chat-completion chunks into the completion they add up to."""

from __future__ import annotations

from typing import Any


class StreamAssembler:
    """Collect content, reasoning, tool-call fragments, finish reason and usage of a stream."""

    def __init__(self) -> None:
        """Start with nothing received."""
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.id: str | None = None
        self.created: int | None = None
        self.system_fingerprint: str | None = None
        self.chunks = 0

    def add(self, chunk: dict[str, Any]) -> None:
        """Take one chunk into account."""
        self.chunks += 1
        self.model = chunk.get("model") or self.model
        self.id = self.id or chunk.get("id")
        self.created = self.created or chunk.get("created")
        self.system_fingerprint = chunk.get("system_fingerprint") or self.system_fingerprint
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.content.append(delta["content"])
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                self.reasoning.append(reasoning)
            for call in delta.get("tool_calls") or ():
                slot = self.tool_calls.setdefault(
                    call.get("index", 0),
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                if call.get("id"):
                    slot["id"] = call["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    @property
    def text(self) -> str:
        """The answer's text so far."""
        return "".join(self.content)

    @property
    def reasoning_text(self) -> str | None:
        """The reasoning so far, or None when the backend sent none."""
        return "".join(self.reasoning) or None

    def completion(self, completion_id: str, created: int) -> dict[str, Any]:
        """The non-streaming completion equivalent to what was streamed."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.reasoning:
            message["reasoning_content"] = self.reasoning_text
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        completion: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}],
            "usage": self.usage,
        }
        if self.system_fingerprint:
            completion["system_fingerprint"] = self.system_fingerprint
        return completion


def completion_chunks(response: dict[str, Any], *, include_usage: bool) -> list[dict[str, Any]]:
    """The stream chunks that add up to `response` (a non-streaming chat completion).

    Used to stream an answer from the response cache: a role delta, the reasoning, the
    content, each tool call whole (index, id, name, arguments), the finish reason, and
    the usage chunk when the client asked for it.
    """
    base = {key: response.get(key) for key in ("id", "created", "model")}
    base["object"] = "chat.completion.chunk"
    chunks: list[dict[str, Any]] = []
    for choice in response.get("choices") or ():
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if message.get("reasoning_content"):
            deltas.append({"reasoning_content": message["reasoning_content"]})
        if message.get("content"):
            deltas.append({"content": message["content"]})
        for position, call in enumerate(message.get("tool_calls") or ()):
            deltas.append({"tool_calls": [{"index": position, **call}]})
        chunks.extend(
            {**base, "choices": [{"index": index, "delta": delta, "finish_reason": None}]} for delta in deltas
        )
        finish = {"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}
        chunks.append({**base, "choices": [finish]})
    if include_usage and response.get("usage"):
        chunks.append({**base, "choices": [], "usage": response["usage"]})
    return chunks
