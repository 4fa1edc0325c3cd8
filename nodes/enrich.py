"""Fetch real-time context with xAI's search tools, for the primary model to answer with."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from core.backends.client import BackendError
from core.backends.payloads import now_text
from core.backends.steps import step_record
from core.context import RouterContext
from core.messages import routing_view
from core.services import run_scope
from core.state import RouterState


def read_search_answer(answer: dict[str, Any]) -> tuple[str, list[str]]:
    """Return the text and the cited URLs of an xAI `/v1/responses` answer."""
    texts: list[str] = []
    urls: list[str] = []
    for item in answer.get("output") or []:
        if not isinstance(item, dict) or item.get("type") != "message":
            continue
        for part in item.get("content") or []:
            if isinstance(part, dict) and part.get("type") in ("output_text", "text"):
                texts.append(part.get("text") or "")
                for note in part.get("annotations") or []:
                    if isinstance(note, dict) and note.get("url"):
                        urls.append(note["url"])
    urls.extend(url for url in answer.get("citations") or [] if isinstance(url, str))
    return "\n".join(t for t in texts if t).strip(), list(dict.fromkeys(urls))


async def enrich(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Search with xAI and keep what it found; on failure, go on without context.

    The search sees the same bounded view of the conversation as the classifier, so a
    follow-up such as "and today?" is searched with the topic it follows up on.
    """
    services, context = run_scope(runtime.context)
    settings = services.settings
    backend = services.backends["xai"]
    query, history = routing_view(state["messages"], settings.classify_context_budget)
    question = f"{history}\nUSER: {query}" if history else query
    search_prompt = context.prompts.render(
        "enrichment/search", now=now_text(settings.tz), tz=settings.tz, query=question
    )
    payload = {
        "model": backend.model,
        "input": [{"role": "user", "content": search_prompt}],
        "tools": [{"type": tool} for tool in settings.search_tools],
    }
    started = time.perf_counter()
    try:
        # Its own short deadline (ENRICH_TIMEOUT_S), never beyond the xAI total (XAI_TIMEOUT_S).
        answer = await backend.post_json("/responses", payload, min(settings.enrich_timeout_s, backend.timeout_s))
    except BackendError as error:
        step = step_record("enrich", backend, "/responses", payload["input"], started, error=error)
        reason = f"{state.get('route_reason', '')}; search failed ({error.message}): primary without context"
        return {"enrichment": None, "citations": [], "route_reason": reason, "steps": [step]}
    text, urls = read_search_answer(answer)
    step = step_record(
        "enrich", backend, "/responses", payload["input"], started,
        content=text, usage=answer.get("usage"), model=answer.get("model"), extra={"citations": urls},
    )
    update: dict[str, Any] = {"enrichment": text or None, "citations": urls, "steps": [step]}
    if not text:
        update["route_reason"] = f"{state.get('route_reason', '')}; search returned nothing: primary without context"
    return update
