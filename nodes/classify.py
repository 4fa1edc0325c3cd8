"""Ask the classifier model which route serves the human's last message."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from core.backends.client import BackendError, elapsed_ms
from core.backends.steps import step_record
from core.context import RouterContext
from core.messages import routing_view
from core.routes import carries_tools, classifiable_labels, decide
from core.routing.parse import parse_route
from core.services import run_scope
from core.state import RouterState


async def classify(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Classify the request, or record why the classifier could not (`default_route` then decides).

    The classifier sees the last user message and at most `CLASSIFY_CONTEXT_BUDGET`
    characters of conversation (tool output and system prompts left out). The same text
    seen again (a regeneration, a retry, the next step of a tool loop) is answered from
    the decision cache without a second classifier call.
    """
    services, context = run_scope(runtime.context)
    settings, prompts = services.settings, context.prompts
    tools = carries_tools(state.get("params"))
    query, history = routing_view(state["messages"], settings.classify_context_budget)
    cache = services.caches.decisions
    cached = await cache.aget(query, history, prompts.digest)
    if cached is not None:
        label, raw = cached
        update = decide(label, "classifier (cached)", settings, tools=tools)
        return {**update, "classification_raw": raw, "classification_ms": 0.0}
    backend = services.backends["classifier"]
    labels = classifiable_labels()
    messages = [
        {"role": "system", "content": prompts.render("routing/system")},
        {
            "role": "user",
            "content": prompts.render(
                "routing/request", history=history or "(none)", query=query, labels=", ".join(labels)
            ),
        },
    ]
    payload = {"model": backend.model, "messages": messages, "temperature": 0, "max_tokens": 256}
    started = time.perf_counter()
    try:
        answer = await backend.post_json("/chat/completions", payload, settings.classifier_timeout_s)
        raw = (answer.get("choices") or [{}])[0].get("message", {}).get("content") or ""
    except BackendError as error:
        step = step_record("classify", backend, "/chat/completions", messages, started, error=error)
        return {
            "classification_failure": f"classifier failed ({error.message})",
            "classification_raw": None, "classification_ms": step["duration_ms"], "steps": [step],
        }
    except (AttributeError, IndexError, TypeError):
        raw, answer = "", {}
    duration = elapsed_ms(started)
    step = step_record(
        "classify", backend, "/chat/completions", messages, started,
        content=raw, usage=answer.get("usage"), model=answer.get("model"),
    )
    parsed = parse_route(raw, labels)
    result = {"classification_raw": raw, "classification_ms": duration, "steps": [step]}
    if parsed is None:
        return {**result, "classification_failure": f"classifier answer not a route ({raw[:80]!r})"}
    cache.put(query, history, prompts.digest, parsed, raw)
    return {**decide(parsed, "classifier", settings, tools=tools), **result}
