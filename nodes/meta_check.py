"""Decide a route without any model call: forced, a tool loop's, images, or housekeeping."""

from __future__ import annotations

from langgraph.runtime import Runtime

from core.context import RouterContext
from core.messages import has_images, pending_tool_call_ids
from core.routes import carries_tools, decide
from core.routing.meta import detect_meta
from core.services import run_scope
from core.state import DecisionUpdate, RouterState


async def meta_check(state: RouterState, runtime: Runtime[RouterContext]) -> DecisionUpdate:
    """Settle the route by rule when one applies; otherwise leave it to `classify`.

    In order: a forced route (from `/api/route` or the Studio context) wins. A request
    that continues a tool loop keeps the route the loop's tool calls were made on, so a
    loop never hops between models mid-task. A conversation with images goes to VISION.
    Then the housekeeping prompts of chat clients (titles, tags, follow-ups, search
    queries, autocomplete) are recognised by their shape and sent to META, never classified.
    """
    services, context = run_scope(runtime.context)
    settings = services.settings
    messages = state["messages"]
    tools = carries_tools(state.get("params"))
    if context.forced_route:
        return decide(context.forced_route, "forced", settings, tools=tools)
    call_ids = pending_tool_call_ids(messages)
    if call_ids:
        known = await services.caches.tool_routes.aroute_of(call_ids)
        if known is not None:
            label, call_id = known
            return decide(label, f"tool loop: stays on {label} (started with {call_id})", settings, tools=tools)
        # Unknown ids (a restart, another replica): `classify` sees the same human turn the
        # loop started from, so it decides the same route again, from its cache when it can.
    if has_images(messages):
        return decide("VISION", "images in the conversation", settings, tools=tools)
    match = detect_meta(messages)
    if match is not None:
        return {**decide("META", f"meta rule {match.rule}", settings), "meta_task": match.task}
    return {}
