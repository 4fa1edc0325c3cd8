"""Wire the routing graph: rules, classification, enrichment, generation, fallback.

Read top to bottom, this is the whole control flow of a request:

    START -> meta_check --(route decided by rule)--> enrich | generate | END (dry run)
                        \\--(undecided)--> fast_classify --(confident)--> enrich | generate | END (dry run)
                                                         \\--(unsure, shadow)--> classify
                        \\--(undecided, LOCAL_CLASSIFIER=off)--> classify --> enrich | generate | END
    classify --(no usable answer: failed, timed out, garbage)--> default_route --> enrich | generate | END
    enrich -> generate --(failed before first byte, fallback left)--> fall_back -> generate
                       \\--> END
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import get_runtime

from ai_router.settings import get_settings
from graph.context import RouterContext
from graph.routes import ROUTES, fallback_backend
from graph.state import InputState, OutputState, RouterState
from nodes.classify import classify
from nodes.default_route import default_route
from nodes.enrich import enrich
from nodes.fall_back import fall_back
from nodes.fast_classify import fast_classify
from nodes.generate import generate
from nodes.meta_check import meta_check
from prompts import prompts_digest

# The route functions are `async def` although they only read the state: LangGraph runs a
# plain function given to `add_conditional_edges` in a thread pool under `astream`/`ainvoke`
# (`run_in_executor`), two thread hops per request that cost more than the rest of the graph
# (see benchmarks/results/README.md). As coroutines they run inline on the event loop.


def _dry_run() -> bool:
    """Whether the current run only decides the route.

    Read through `get_runtime()`, not a `runtime` parameter: `update_state` (editing a paused
    run in Studio) evaluates the edges without a runtime, and LangGraph refuses to call an
    edge function that declares one. Such an edit is never a dry run.
    """
    try:
        runtime = get_runtime(RouterContext)
    except RuntimeError:  # called outside any graph run
        return False
    return runtime is not None and runtime.context is not None and runtime.context.dry_run


async def next_after_decision(state: RouterState) -> Literal["enrich", "generate", "__end__"]:
    """Where a decided route goes: nowhere on a dry run or a refusal, else its table node."""
    if _dry_run() or state.get("error"):
        return END
    if ROUTES[state["route"]].node == "enrich" and not state.get("degraded"):
        return "enrich"
    return "generate"


async def route_after_meta_check(
    state: RouterState,
) -> Literal["fast_classify", "classify", "enrich", "generate", "__end__"]:
    """Classify unless a rule already decided the route; the local classifier first unless it is off."""
    if not state.get("route"):
        # Off skips the node entirely: each node on the hot path costs about 0.2 ms.
        return "classify" if get_settings().local_classifier == "off" else "fast_classify"
    return await next_after_decision(state)


async def route_after_fast_classify(state: RouterState) -> Literal["classify", "enrich", "generate", "__end__"]:
    """Ask the LLM classifier unless the local classifier decided the route."""
    if not state.get("route"):
        return "classify"
    return await next_after_decision(state)


async def route_after_classify(
    state: RouterState,
) -> Literal["default_route", "enrich", "generate", "__end__"]:
    """Fall back to the local guess or MODERATE when the classifier gave no route."""
    if not state.get("route"):
        return "default_route"
    return await next_after_decision(state)


async def route_after_generate(state: RouterState) -> Literal["fall_back", "__end__"]:
    """Fall back when generation failed before any byte reached the client."""
    return "fall_back" if fallback_backend(state) else END


def build_graph() -> StateGraph:
    """Return the uncompiled routing graph (tests compile it with their own options)."""
    builder = StateGraph(
        RouterState, input_schema=InputState, output_schema=OutputState, context_schema=RouterContext
    )
    builder.add_node(meta_check)
    builder.add_node(fast_classify)
    builder.add_node(classify)
    builder.add_node(default_route)
    builder.add_node(enrich)
    builder.add_node(generate)
    builder.add_node(fall_back)

    builder.add_edge(START, "meta_check")
    builder.add_conditional_edges("meta_check", route_after_meta_check)
    builder.add_conditional_edges("fast_classify", route_after_fast_classify)
    builder.add_conditional_edges("classify", route_after_classify)
    builder.add_conditional_edges("default_route", next_after_decision)
    builder.add_edge("enrich", "generate")
    builder.add_conditional_edges("generate", route_after_generate)
    builder.add_edge("fall_back", "generate")
    return builder


# Hash the prompt files now, at import: the decision cache asks for this digest inside the
# async nodes, where a first directory scan would block the event loop (and `langgraph dev`,
# which loads this module for Studio, refuses blocking calls there).
prompts_digest()

graph = build_graph().compile(name="ai-router")
