"""Switch a failed generation to the route's fallback backend."""

from __future__ import annotations

from graph.routes import fallback_backend
from graph.state import RouterState


async def fall_back(state: RouterState) -> dict:
    """Point the run at the fallback backend and say why in the decision."""
    error = state.get("error") or {}
    target = fallback_backend(state)
    reason = f"{state.get('route_reason', '')}; {error.get('backend')} failed ({error.get('message')}): fell back to {target}"
    return {"backend": target, "route_reason": reason, "error": None}
