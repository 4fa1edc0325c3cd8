r"""Wire the routing graph: rules, classification, enrichment, generation, fallback.

Read top to bottom, this is the whole control flow of a request:

    START -> meta_check --(route decided by rule)--> enrich | generate | END (dry run)
                        \\--(undecided, on | auto with a promoted route)--> fast_classify
                              fast_classify --(confident; auto: and promoted)--> enrich | generate | END (dry run)
                                            \\--(unsure, not promoted)--> classify
                        \\--(undecided, off | shadow | auto with nothing promoted)--> classify
                              (shadow, auto: the local prediction runs alongside the LLM call)
    classify --> enrich | generate | END
    classify --(no usable answer: failed, timed out, garbage)--> default_route --> enrich | generate | END
    enrich -> generate --(failed before first byte, fallback left)--> fall_back -> generate
                       \\--> END
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import START, StateGraph
from langgraph.runtime import get_runtime

from core.context import RouterContext
from core.routes import ROUTES
from core.services import run_scope
from core.state import InputState, OutputState, RouterState
from nodes.classify import classify
from nodes.default_route import default_route
from nodes.enrich import enrich
from nodes.fall_back import fall_back
from nodes.fast_classify import fast_classify
from nodes.generate import generate
from nodes.meta_check import meta_check
from prompts import PromptLibrary

# The route functions are `async def` although they only read the state: LangGraph runs a
# plain function given to `add_conditional_edges` in a thread pool under `astream`/`ainvoke`
# (`run_in_executor`), two thread hops per request that cost more than the rest of the graph
# (see benchmarks/results/README.md). As coroutines they run inline on the event loop.


def _context() -> RouterContext | None:
    """The current run's context, if it has one.

    Read through `get_runtime()`, not a `runtime` parameter: `update_state` (editing a paused
    run in Studio) evaluates the edges without a runtime, and LangGraph refuses to call an
    edge function that declares one. Such an edit is never a dry run.
    """
    try:
        runtime = get_runtime(RouterContext)
    except RuntimeError:  # called outside any graph run
        return None
    return runtime.context if runtime is not None else None


def _dry_run() -> bool:
    """Whether the current run only decides the route."""
    context = _context()
    return context is not None and context.dry_run


def _local_classifier_first() -> bool:
    """Whether `fast_classify` runs before the LLM classifier.

    Yes with `on`, and with `auto` once a route is promoted (the prediction must come first to
    save the call). No with `off`, and with `shadow` or `auto` with nothing promoted: then
    `classify` predicts alongside its own call, adding no latency. A context that leaves the mode
    unset (Studio's `{}`) reads it from the settings.
    """
    context = _context()
    services = None
    if context is not None:
        services, context = run_scope(context)
    mode = context.local_classifier if context is not None else None
    if mode == "on":
        return True
    if mode == "auto" and services is not None and services.agreement is not None:
        return services.agreement.any_promoted()
    return False


async def next_after_decision(state: RouterState) -> Literal["enrich", "generate", "__end__"]:
    """Where a decided route goes: nowhere on a dry run or a refusal, else its table node."""
    if _dry_run() or state.get("error"):
        return "__end__"  # END, spelled as the Literal that draws the edge
    if ROUTES[state["route"]].node == "enrich" and not state.get("degraded"):
        return "enrich"
    return "generate"


async def route_after_meta_check(
    state: RouterState,
) -> Literal["fast_classify", "classify", "enrich", "generate", "__end__"]:
    """Classify unless a rule already decided the route; the local classifier first when it may decide."""
    if not state.get("route"):
        # Skipping the node saves about 0.2 ms on the hot path when it could not decide anyway.
        return "fast_classify" if _local_classifier_first() else "classify"
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
    """Fall back when generation failed before any byte reached the client and a backend is left."""
    return "fall_back" if state.get("fallback_to") else "__end__"  # END


def build_graph() -> StateGraph[RouterState, RouterContext, InputState, OutputState]:
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


# Hash the shipped prompts now, at import: the decision cache asks for this digest inside the
# async nodes, where a first directory scan would block the event loop (and `langgraph dev`,
# which loads this module for Studio, refuses blocking calls there).
_ = PromptLibrary.at().digest

graph = build_graph().compile(name="ai-router")
