"""Decide a route without any model call: a forced route, or a client's housekeeping task."""

from __future__ import annotations

from langgraph.runtime import Runtime

from ai_router.meta_detect import detect_meta
from ai_router.settings import get_settings
from graph.context import RouterContext
from graph.routes import decide
from graph.state import Decision, RouterState


async def meta_check(state: RouterState, runtime: Runtime[RouterContext]) -> Decision:
    """Settle the route by rule when one applies; otherwise leave it to `classify`.

    A forced route (from `/api/route` or the Studio context) wins. Then the housekeeping
    prompts of chat clients (titles, tags, follow-ups, search queries, autocomplete) are
    recognised by their shape and sent to META, never classified.
    """
    context = runtime.context or RouterContext()
    settings = get_settings()
    if context.forced_route:
        return decide(context.forced_route, "forced", settings)  # type: ignore[return-value]
    match = detect_meta(state["messages"])
    if match is not None:
        return {**decide("META", f"meta rule {match.rule}", settings), "meta_task": match.task}  # type: ignore[typeddict-item]
    return {}
