"""The routing graph through LangGraph's own API, and the pure pieces it is made of."""

from __future__ import annotations

import string

import pytest

from core.routing.parse import parse_route
from core.messages import routing_view
from core.backends.payloads import chat_payload, with_system_prompt
from graph.build import build_graph, graph
from core.routes import ROUTES, classifiable_labels, decide
from evals.settings import EVAL_PROMPTS
from prompts import PromptLibrary, load_prompt

LABELS = ["SIMPLE", "MODERATE", "COMPLEX", "ENRICH"]


def test_graph_has_the_designed_nodes_and_edges():
    drawn = graph.get_graph()
    assert set(drawn.nodes) == {"__start__", "meta_check", "fast_classify", "classify", "default_route", "enrich",
                                "generate", "fall_back", "__end__"}
    edges = {(e.source, e.target) for e in drawn.edges}
    assert {
        ("__start__", "meta_check"), ("meta_check", "classify"), ("meta_check", "generate"),
        ("meta_check", "enrich"), ("classify", "generate"), ("classify", "enrich"), ("classify", "__end__"),
        ("enrich", "generate"), ("generate", "fall_back"), ("fall_back", "generate"), ("generate", "__end__"),
        ("classify", "default_route"), ("default_route", "generate"), ("default_route", "enrich"),
        ("meta_check", "fast_classify"), ("fast_classify", "classify"), ("fast_classify", "generate"),
        ("fast_classify", "enrich"), ("fast_classify", "__end__"),
    } <= edges


def test_graph_input_schema_takes_openai_messages():
    schema = graph.get_input_jsonschema()
    assert "messages" in schema["properties"] and "messages" in schema["required"]


SHIPPED = PromptLibrary.at()


def test_every_route_is_wired_to_an_existing_prompt():
    names = set(SHIPPED.names())
    for label, spec in ROUTES.items():
        assert spec.prompt in names, label


def test_every_classifiable_route_is_described_in_the_routing_prompt():
    routing = load_prompt("routing/system")
    for label in classifiable_labels():
        assert f"- {label}:" in routing
    assert "- META:" not in routing  # META is rule-based, never classified


def test_eval_prompts_are_not_router_prompts():
    # Editing the judge or review prompt must not change the router's prompt digest (and so
    # every session's prompt_version and every cache key).
    assert not any(name.startswith("evals") for name in SHIPPED.names())
    assert set(EVAL_PROMPTS.names()) == {"judge", "judge_request", "review", "review_request"}


@pytest.mark.parametrize(("library", "name"), [(SHIPPED, n) for n in SHIPPED.names()]
                         + [(EVAL_PROMPTS, n) for n in EVAL_PROMPTS.names()])
def test_every_prompt_renders_with_its_keys(library, name):
    keys = {field for _, field, _, _ in string.Formatter().parse(library.load(name)) if field}
    assert keys <= {"now", "tz", "context", "sources", "query", "history", "labels",
                    "answer", "findings", "prompt_files"}, keys  # the last three: evals/prompts
    rendered = library.render(name, **{k: f"<{k}>" for k in keys})
    assert "{" not in rendered.replace("{ ", "").replace("{\"", "") or name.startswith("meta")


@pytest.mark.parametrize(("answer", "expected"), [
    ("SIMPLE", "SIMPLE"),
    ("**SIMPLE**", "SIMPLE"),
    ("Route: COMPLEX.", "COMPLEX"),
    ("route = enrich", "ENRICH"),
    ("The user asks about prices, that needs a search. ENRICH", "ENRICH"),
    ("Not SIMPLE, more like MODERATE", "MODERATE"),
    ("<think>Is it SIMPLE? It involves a proof.</think>\nCOMPLEX", "COMPLEX"),
    ("This is a simple question.\nLabel: MODERATE", "MODERATE"),
    ("a simple greeting", "SIMPLE"),
    ("I don't know", None),
    ("", None),
    ("SIMPLEX method", None),
])
def test_parse_route(answer, expected):
    assert parse_route(answer, LABELS) == expected


def test_routing_view_respects_the_budget_and_skips_tool_noise():
    messages = [
        {"role": "system", "content": "You are helpful. " * 50},
        {"role": "user", "content": "What is the price of bitcoin?"},
        {"role": "assistant", "content": "About 60k."},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function",
                                                               "function": {"name": "s", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "1", "content": "TOOL OUTPUT " * 500},
        {"role": "user", "content": [{"type": "text", "text": "and today?"}]},
    ]
    query, history = routing_view(messages, 200)
    assert query == "and today?"
    assert "price of bitcoin" in history and "TOOL OUTPUT" not in history and "helpful" not in history
    assert len(query) + len(history) <= 200 + 2
    _, short = routing_view(messages, 30)
    assert len(short) <= 30


def test_system_prompt_merges_with_the_clients_system_message():
    merged = with_system_prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "x"}], "ROUTER")
    assert merged == [{"role": "system", "content": "ROUTER\n\nBe brief."}, {"role": "user", "content": "x"}]


def test_chat_payload_passes_client_fields_and_floors_max_tokens():
    payload = chat_payload(
        [{"role": "user", "content": "x"}], {"max_tokens": 10, "temperature": 0.1, "stop": ["\n"], "model": "x"},
        "grok", "SYS", stream=True, min_max_tokens=16384,
    )
    assert payload["model"] == "grok" and payload["max_tokens"] == 16384
    assert payload["temperature"] == 0.1 and payload["stop"] == ["\n"]
    assert payload["stream"] is True and payload["stream_options"] == {"include_usage": True}


def test_decide_degrades_without_xai_key():
    from core.settings import Settings

    without_key = decide("COMPLEX", "classifier", Settings(xai_api_key=None))
    assert without_key["backend"] == "primary" and without_key["degraded"]
    with_key = decide("COMPLEX", "classifier", Settings(xai_api_key="k"))
    assert with_key["backend"] == "xai" and with_key["degraded"] is None
    with pytest.raises(ValueError, match="Expected one of"):
        decide("NOPE", "x", Settings())


def test_build_graph_returns_a_fresh_builder():
    assert build_graph() is not build_graph()
    assert build_graph().compile().get_graph().nodes.keys() == graph.get_graph().nodes.keys()
