"""Decide the route when the LLM classifier gave nothing usable (failed, timed out, or garbage)."""

from __future__ import annotations

from langgraph.runtime import Runtime

from core.context import RouterContext
from core.routes import DEFAULT_ROUTE, carries_tools, classifiable_labels, decide
from core.services import run_scope
from core.state import DecisionUpdate, RouterState


def fallback_label(state: RouterState) -> tuple[str, str]:
    """The route to take, and a note saying where it came from.

    The local classifier's best guess (recorded by `fast_classify`, even when unsure or in
    shadow mode) beats a blind MODERATE; without one, MODERATE it is.
    """
    local = state.get("local_classification") or {}
    label = local.get("label")
    if label and label in classifiable_labels():
        return label, (f"; local classifier's guess {label} (p={local['probability']:.3f}, "
                       f"{local['model_version']})")
    return DEFAULT_ROUTE, ""


async def default_route(state: RouterState, runtime: Runtime[RouterContext]) -> DecisionUpdate:
    """Route on the local guess or MODERATE, saying why the classifier could not decide."""
    label, guess = fallback_label(state)
    reason = f"fallback: {state.get('classification_failure') or 'classifier gave no route'}{guess}"
    services, _ = run_scope(runtime.context)
    return decide(label, reason, services.settings, tools=carries_tools(state.get("params")))
