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
    the local prediction runs here, on a worker thread, from the moment the classifier request is
    on the wire (`_Alongside`), so it adds
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
    prediction = _Alongside(services, state["messages"], labels, context.local_classifier_threshold)
    query, history = routing_view(state["messages"], settings.classify_context_budget)
    cache = services.caches.decisions
    cached = await cache.aget(query, history, prompts.digest)
    if cached is not None:
        label, raw = cached
        update = decide(label, "classifier (cached)", settings, tools=tools)
        return {**update, **(await prediction.update(mode) if predict_here else {}),
                "classification_raw": raw, "classification_ms": 0.0}
    answer = await ask_classifier(services.backends["classifier"], prompts, query, history, labels,
                                  settings.classifier_timeout_s, on_sent=prediction.start if predict_here else None)
    step = answer.step
    local_update = await prediction.update(mode) if predict_here else {}
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


class _Alongside:
    """The local prediction of one request, run on the services' worker thread once the LLM call is sent.

    Started from the classifier request's `on_sent` (its body is on the wire, so the prediction
    never delays it going out); started late, when the answer came from the cache or the call
    failed before sending anything.
    """

    def __init__(self, services: Services, messages: list[dict[str, Any]], labels: list[str],
                 threshold: float | None) -> None:
        self.services, self.messages, self.labels, self.threshold = services, messages, labels, threshold
        self.future: asyncio.Future[dict[str, Any]] | None = None

    def start(self) -> None:
        """Hand the prediction to the worker thread (once; nothing when no model is loaded)."""
        model = self.services.local_model
        if self.future is None and model is not None:
            self.future = asyncio.get_running_loop().run_in_executor(
                self.services.local_executor, assess, model, self.messages, self.labels, self.threshold)

    async def update(self, mode: str | None) -> dict[str, Any]:
        """The state update that records the prediction."""
        self.start()
        if self.future is None:
            return {"local_classification": dict(NOT_LOADED)}
        local = await self.future
        if mode == "shadow" and local["note"] in (None, "unsure"):  # `confident` still tells them apart
            local["note"] = "shadow mode"
        elif local["note"] is None:
            local["note"] = "auto: no route promoted"
        return {"local_classification": local}
