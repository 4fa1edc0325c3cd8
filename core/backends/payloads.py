"""Build the request each backend receives from the client's request and the decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.messages import Message, message_text
from core.state import SET_BY_ROUTER
from prompts import PromptLibrary


def now_text(tz: str) -> str:
    """The current date and time in `tz`, as prompts show it."""
    return datetime.now(ZoneInfo(tz)).strftime("%A, %B %d, %Y, %H:%M %Z")


def with_system_prompt(messages: list[Message], system_prompt: str) -> list[Message]:
    """Put the router's system prompt first, merged with the client's own system message.

    Many chat templates accept one system message only, at the start, so the client's
    leading system (or developer) message is appended to ours instead of kept apart.
    """
    if messages and messages[0].get("role") in ("system", "developer"):
        client_system = message_text(messages[0]).strip()
        merged = f"{system_prompt}\n\n{client_system}" if client_system else system_prompt
        return [{"role": "system", "content": merged}, *messages[1:]]
    return [{"role": "system", "content": system_prompt}, *messages]


def system_prompt(prompts: PromptLibrary, prompt_name: str, tz: str, enrichment: str | None = None,
                  citations: list[str] | None = None) -> str:
    """Render a route's system prompt, with fetched context appended when there is some."""
    now = now_text(tz)
    text = prompts.render(prompt_name, now=now, tz=tz)
    if enrichment:
        sources = "\n".join(f"- {url}" for url in citations or []) or "- (none given)"
        text += "\n\n" + prompts.render(
            "enrichment/injection", now=now, context=enrichment, sources=sources
        )
    return text


def chat_payload(
    messages: list[Message],
    params: dict[str, Any],
    model: str,
    system: str,
    *,
    stream: bool,
    min_max_tokens: int | None = None,
    allow_tools: bool = True,
) -> dict[str, Any]:
    """The chat-completions body for a backend: the client's fields, our model and prompt."""
    # Everything else the client sent passes through untouched.
    payload = {k: v for k, v in params.items() if k not in SET_BY_ROUTER and k != "messages"}
    if not allow_tools:
        for key in ("tools", "tool_choice", "parallel_tool_calls", "functions", "function_call"):
            payload.pop(key, None)
    if min_max_tokens is not None:
        # Reasoning models spend tokens thinking before they answer; a client's small
        # max_tokens would leave them nothing to answer with.
        key = "max_completion_tokens" if "max_completion_tokens" in payload else "max_tokens"
        payload[key] = max(int(payload.get(key) or 0), min_max_tokens)
    payload["model"] = model
    payload["messages"] = with_system_prompt(messages, system)
    if stream:
        payload["stream"] = True
        # Always ask for usage so sessions can record it; the server drops the usage-only
        # chunk again when the client did not ask for it.
        payload["stream_options"] = {**(params.get("stream_options") or {}), "include_usage": True}
    return payload
