"""Decide the route when the LLM classifier gave nothing usable (failed, timed out, or garbage)."""

from __future__ import annotations

from ai_router.settings import get_settings
from graph.routes import DEFAULT_ROUTE, carries_tools, classifiable_labels, decide
from graph.state import RouterState


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


async def default_route(state: RouterState) -> dict:
    """Route on the local guess or MODERATE, saying why the classifier could not decide."""
    label, guess = fallback_label(state)
    reason = f"fallback: {state.get('classification_failure') or 'classifier gave no route'}{guess}"
    return decide(label, reason, get_settings(), tools=carries_tools(state.get("params")))
