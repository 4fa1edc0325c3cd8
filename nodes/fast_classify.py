"""Decide the route with the local learned classifier when it is confident; otherwise leave it."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from core.context import RouterContext
from core.routes import carries_tools, classifiable_labels, decide
from core.services import run_scope
from core.state import RouterState


async def fast_classify(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Predict the route in-process; settle it when confident and `LOCAL_CLASSIFIER=on`.

    The prediction is always recorded (`local_classification`), so shadow mode can be
    compared with the LLM classifier on real traffic, and `classify` can fall back to it
    when the LLM classifier fails. The model never decides when it is unsure, in shadow
    mode, or when the route table has classifiable routes it was not trained on (a route
    added since the last `make train-router`): the LLM classifier knows the new label, the
    model cannot.
    """
    services, context = run_scope(runtime.context)
    if context.local_classifier == "off":  # a Studio run's context can turn it off after the edge
        return {}
    model = services.local_model
    if model is None:
        return {"local_classification": {
            "label": None, "probability": None, "threshold": None, "model_version": None,
            "decided": False, "ms": 0.0, "note": "model not loaded (see the router's log)",
        }}
    prediction = model.predict(state["messages"])
    # One threshold per route (chosen out of source by `make train-router`); the setting overrides all.
    threshold = context.local_classifier_threshold
    if threshold is None:
        threshold = model.thresholds.get(prediction.label, model.threshold)
    labels = classifiable_labels()
    untrained = [label for label in labels if label not in model.labels]
    note = None
    if untrained:
        note = f"model not trained on {', '.join(untrained)}: retrain with make train-router"
    elif prediction.label not in labels:
        note = f"predicted {prediction.label}, no longer a classifiable route"
    elif prediction.known_share < model.min_known_share:
        note = f"unfamiliar text ({prediction.known_share:.0%} of its n-grams known)"
    elif context.local_classifier == "shadow":
        note = "shadow mode"
    elif prediction.probability < threshold:
        note = "unsure"
    local = {
        "label": prediction.label,
        "probability": round(prediction.probability, 4),
        "threshold": threshold,
        "model_version": model.version,
        "decided": note is None,
        "ms": round(prediction.ms, 3),
        "note": note,
    }
    if note is not None:
        return {"local_classification": local}
    reason = f"local classifier (p={prediction.probability:.3f} >= {threshold:.3f}, {model.version})"
    update = decide(prediction.label, reason, services.settings, tools=carries_tools(state.get("params")))
    return {**update, "local_classification": local, "classification_raw": None,
            "classification_ms": round(prediction.ms, 3)}
