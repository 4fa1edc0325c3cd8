"""Ask the LLM classifier for a route: the one call `classify` makes, and auto mode's audits make off the path."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.backends.client import Backend, BackendError
from core.backends.steps import step_record
from core.routing.parse import parse_route
from prompts import PromptLibrary


@dataclass
class ClassifierAnswer:
    """What the classifier said (or why it said nothing) and the session step describing the call."""

    route: str | None
    """The parsed route label; None when the call failed or the answer named no route."""
    raw: str | None
    """The answer verbatim (None when the call failed)."""
    step: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    """Why there is no answer: `classifier failed (…)`, or None."""


def classifier_messages(prompts: PromptLibrary, query: str, history: str, labels: list[str]) -> list[dict[str, str]]:
    """The classification request: the routing system prompt and the rendered conversation."""
    return [
        {"role": "system", "content": prompts.render("routing/system")},
        {"role": "user", "content": prompts.render(
            "routing/request", history=history or "(none)", query=query, labels=", ".join(labels))},
    ]


async def ask_classifier(backend: Backend, prompts: PromptLibrary, query: str, history: str, labels: list[str],
                         timeout_s: float, on_sent: Callable[[], None] | None = None) -> ClassifierAnswer:
    """Call the LLM classifier once (with the backend's retries) and parse its answer.

    `on_sent` is called once the request is on the wire (see `Backend.post_json`).
    """
    messages = classifier_messages(prompts, query, history, labels)
    payload = {"model": backend.model, "messages": messages, "temperature": 0, "max_tokens": 256}
    started = time.perf_counter()
    try:
        answer = await backend.post_json("/chat/completions", payload, timeout_s, on_sent)
        raw = (answer.get("choices") or [{}])[0].get("message", {}).get("content") or ""
    except BackendError as error:
        step = step_record("classify", backend, "/chat/completions", messages, started, error=error)
        return ClassifierAnswer(None, None, step, f"classifier failed ({error.message})")
    except (AttributeError, IndexError, TypeError):
        raw, answer = "", {}
    step = step_record("classify", backend, "/chat/completions", messages, started,
                       content=raw, usage=answer.get("usage"), model=answer.get("model"))
    return ClassifierAnswer(parse_route(raw, labels), raw, step)
