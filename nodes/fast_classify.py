"""Decide the route with the local learned classifier when it may; otherwise leave it to the LLM."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from core.context import RouterContext
from core.messages import routing_view
from core.routes import carries_tools, classifiable_labels, decide
from core.routing.agreement import AgreementTracker
from core.routing.ask import ask_classifier
from core.routing.local_decision import NOT_LOADED, assess
from core.services import Services, run_scope
from core.state import RouterState


async def fast_classify(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Predict the route in-process; settle it when the mode lets a confident prediction decide.

    `LOCAL_CLASSIFIER=on`: every confident prediction decides. `auto`: only a confident prediction
    of a route promoted on this deployment's measured agreement (`core.routing.agreement`) decides,
    and a share of those is still classified by the LLM in the background (the audit). The
    prediction is always recorded (`local_classification`), so `classify` can measure it against
    the LLM's answer and fall back to it when the LLM classifier fails. The model never decides
    when it is unsure, or when the route table has classifiable routes it was not trained on (a
    route added since the last `make train-router`): the LLM classifier knows the new label, the
    model cannot. (Shadow mode, and auto with no route promoted, skip this node: `classify` then
    predicts alongside its own call, adding no latency.)
    """
    services, context = run_scope(runtime.context)
    mode = context.local_classifier
    if mode == "off":  # a Studio run's context can turn it off after the edge
        return {}
    model = services.local_model
    if model is None:
        return {"local_classification": dict(NOT_LOADED)}
    local = assess(model, state["messages"], classifiable_labels(), context.local_classifier_threshold)
    if mode == "shadow" and local["note"] in (None, "unsure"):  # `confident` still tells them apart
        local["note"] = "shadow mode"
    tracker = services.agreement
    if local["note"] is None and mode == "auto":
        if tracker is None or not tracker.promoted(local["label"]):
            figures = tracker.figures(local["label"]) if tracker is not None else {}
            local["note"] = (f"auto: {local['label']} not promoted ({figures.get('samples', 0)} samples, "
                             f"lower bound {figures.get('wilson_lower', 0.0):.3f})")
    if local["note"] is not None:
        return {"local_classification": local}
    local["decided"] = True
    promoted = ", auto: promoted" if mode == "auto" else ""
    reason = (f"local classifier (p={local['probability']:.3f} >= {local['threshold']:.3f}, "
              f"{local['model_version']}{promoted})")
    if mode == "auto" and tracker is not None and context.measured_session is not None:  # real traffic only
        tracker.count_saved(local["label"])
        if tracker.should_audit():
            local["audited"] = True
            tracker.audit(_audit(services, context, tracker, state["messages"], local["label"]))
    update = decide(local["label"], reason, services.settings, tools=carries_tools(state.get("params")))
    return {**update, "local_classification": local, "classification_raw": None,
            "classification_ms": local["ms"]}


async def _audit(services: Services, context: RouterContext, tracker: AgreementTracker,
                 messages: list[dict[str, Any]], predicted: str) -> None:
    """Classify a locally decided request with the LLM too, off the request path, and count it."""
    settings = services.settings
    query, history = routing_view(messages, settings.classify_context_budget)
    answer = await ask_classifier(services.backends["classifier"], context.prompts, query, history,
                                  classifiable_labels(), settings.classifier_timeout_s)
    if answer.route is not None:
        tracker.observe(predicted, answer.route, context.measured_session or "", audit=True)
