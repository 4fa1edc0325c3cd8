"""Switch a failed generation to the route's fallback backend."""

from __future__ import annotations

from typing import Any

from core.routes import route_path
from core.state import RouterState


async def fall_back(state: RouterState) -> dict[str, Any]:
    """Point the run at the fallback backend `generate` named, and say why in the decision."""
    error = state.get("error") or {}
    target = state.get("fallback_to")
    failure = f"{error.get('backend')} failed ({error.get('message')})"
    reason = f"{state.get('route_reason', '')}; {failure}: fell back to {target}"
    return {
        "backend": target, "path": route_path(state["route"], target, state.get("degraded")),
        "route_reason": reason, "error": None, "fallback_to": None,
    }
