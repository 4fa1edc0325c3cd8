"""Ask the classifier model which route serves the human's last message."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime

from core.context import RouterContext
from core.messages import routing_view
from core.routes import carries_tools, classifiable_labels, decide
from core.routing.ask import ask_classifier
from core.routing.local_decision import NOT_LOADED, assess
from core.services import Services, run_scope
from core.state import RouterState


async def classify(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Classify the request, or record why the classifier could not (`default_route` then decides).

    The classifier sees the last user message and at most `CLASSIFY_CONTEXT_BUDGET`
    characters of conversation (tool output and system prompts left out). The same text
    seen again (a regeneration, a retry, the next step of a tool loop) is answered from
    the decision cache without a second classifier call.

    In shadow mode (and auto mode while no route is promoted) `fast_classify` is skipped and
    the local prediction runs here, on a worker thread alongside the classifier call, so it adds
    no latency to a request the LLM decides. A confident local prediction and the LLM's answer
    are then one sample of their agreement (`core.routing.agreement`), for real traffic only
    (`measured_session`); a cached answer is not a new sample (the same text again).
    """
    services, context = run_scope(runtime.context)
    settings, prompts = services.settings, context.prompts
    tools = carries_tools(state.get("params"))
    labels = classifiable_labels()
    local = state.get("local_classification")
    mode = context.local_classifier
    predict_here = local is None and mode in ("shadow", "auto")
    alongside = None
    if predict_here:
        alongside = _predict_alongside(services, state["messages"], labels, context.local_classifier_threshold)
    query, history = routing_view(state["messages"], settings.classify_context_budget)
    cache = services.caches.decisions
    cached = await cache.aget(query, history, prompts.digest)
    if cached is not None:
        label, raw = cached
        update = decide(label, "classifier (cached)", settings, tools=tools)
        return {**update, **(await _local_update(alongside, mode) if predict_here else {}),
                "classification_raw": raw, "classification_ms": 0.0}
    answer = await ask_classifier(services.backends["classifier"], prompts, query, history, labels,
                                  settings.classifier_timeout_s)
    step = answer.step
    local_update = await _local_update(alongside, mode) if predict_here else {}
    local = local_update.get("local_classification", local)
    if answer.error is not None:
        return {"classification_failure": answer.error, "classification_raw": None,
                "classification_ms": step["duration_ms"], "steps": [step], **local_update}
    result = {"classification_raw": answer.raw, "classification_ms": step["duration_ms"], "steps": [step],
              **local_update}
    if answer.route is None:
        return {**result, "classification_failure": f"classifier answer not a route ({(answer.raw or '')[:80]!r})"}
    cache.put(query, history, prompts.digest, answer.route, answer.raw or "")
    tracker, session = services.agreement, context.measured_session
    if tracker is not None and session is not None and local and local.get("confident"):
        tracker.observe(local["label"], answer.route, session)
    return {**decide(answer.route, "classifier", settings, tools=tools), **result}


def _predict_alongside(services: Services, messages: list[dict[str, Any]], labels: list[str],
                       threshold: float | None) -> asyncio.Future[dict[str, Any]] | None:
    """Start the local prediction on the services' worker thread (None: no model loaded)."""
    model = services.local_model
    if model is None:
        return None
    return asyncio.get_running_loop().run_in_executor(services.local_executor, assess, model, messages, labels,
                                                      threshold)


async def _local_update(alongside: asyncio.Future[dict[str, Any]] | None, mode: str | None) -> dict[str, Any]:
    """The state update that records a prediction made alongside the classifier call."""
    if alongside is None:
        return {"local_classification": dict(NOT_LOADED)}
    local = await alongside
    if mode == "shadow" and local["note"] in (None, "unsure"):  # `confident` still tells them apart
        local["note"] = "shadow mode"
    elif local["note"] is None:
        local["note"] = "auto: no route promoted"
    return {"local_classification": local}
