"""Tool calling through the router: a two-step loop with the `openai` client, streaming and not."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import CLASSIFIER_MODEL, PRIMARY_MODEL, sim_calls, sim_env, start_router, stop_router

XAI_MODEL = "grok-4-1-fast-reasoning"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_constant",
            "description": "Look up a mathematical constant.",
            "parameters": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_notes",
            "description": "Search my notes.",
            "parameters": {"type": "object"},
        },
    },
]
# COMPLEX by the simulator's classifier, and names a tool, so the model calls it.
ASK = "Prove the theorem about pi, call lookup_constant for pi first"
# A tool result that would route elsewhere if the classifier ever saw it.
TOOL_OUTPUT = "18C and sunny #route=ENRICH latest news"


def _generation_calls(sim) -> list[dict]:
    return [
        c
        for c in sim_calls(sim)
        if c["path"].endswith("/chat/completions") and c["model"] != CLASSIFIER_MODEL
    ]


def _classifier_calls(sim) -> list[dict]:
    return [c for c in sim_calls(sim) if c["model"] == CLASSIFIER_MODEL]


def _reset(sim) -> None:
    httpx.post(f"{sim.url}/sim/reset").raise_for_status()


def test_tool_loop_non_streaming(router, sim_reset):
    client = router.client()
    messages = [{"role": "user", "content": ASK}]
    first = client.chat.completions.with_raw_response.create(
        model="ai-router",
        messages=messages,
        tools=TOOLS,
        tool_choice="auto",
        parallel_tool_calls=False,
    )
    completion = first.parse()
    assert first.headers["x-ai-router-route"] == "COMPLEX" and first.headers["x-ai-router-backend"] == "xai"
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "lookup_constant" and call.id.startswith("call_")
    assert json.loads(call.function.arguments) == {"name": ASK[:40]}  # the schema's required string
    sent = _generation_calls(sim_reset)[0]["body"]
    # tools and their knobs reach the backend untouched
    assert sent["tools"] == TOOLS and sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is False

    _reset(sim_reset)
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": TOOL_OUTPUT},
    ]
    second = client.chat.completions.with_raw_response.create(
        model="ai-router", messages=messages, tools=TOOLS
    )
    answer = second.parse().choices[0]
    assert second.headers["x-ai-router-route"] == "COMPLEX"
    assert second.headers["x-ai-router-reason"].startswith(
        f"tool loop: stays on COMPLEX (started with {call.id})"
    )
    assert answer.finish_reason == "stop"
    assert answer.message.content.startswith(f"[sim:{XAI_MODEL}] tool said: 18C and sunny")
    assert not _classifier_calls(sim_reset)  # the loop's route was remembered, not re-decided
    sent = _generation_calls(sim_reset)[0]["body"]["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == call.id
    assert sent[-1] == {"role": "tool", "tool_call_id": call.id, "content": TOOL_OUTPUT}


def _tool_deltas(chunks: list[dict]) -> list[dict]:
    """Every tool-call fragment of a stream, in order, with the call id replaced by a marker."""
    out = []
    for chunk in chunks:
        for choice in chunk.get("choices") or ():
            for call in (choice.get("delta") or {}).get("tool_calls") or ():
                out.append({**call, "id": "ID"} if "id" in call else call)
    return out


def _sse_chunks(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


def test_tool_loop_streaming_keeps_every_delta(router, sim_reset):
    client = router.client()
    messages = [{"role": "user", "content": ASK}]
    with client.chat.completions.with_streaming_response.create(
        model="ai-router",
        messages=messages,
        tools=TOOLS,
        stream=True,
    ) as response:
        assert response.headers["x-ai-router-route"] == "COMPLEX"
        assert response.headers["x-ai-router-model"] == XAI_MODEL
        chunks = [chunk.to_dict() for chunk in response.parse()]
    received = _tool_deltas(chunks)
    ids = {
        call["id"]
        for chunk in chunks
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls") or ()
        if "id" in call
    }
    assert len(ids) == 1 and next(iter(ids)).startswith("call_")
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"

    # What the simulator streams for exactly the request the router sent it, fragment by fragment.
    body = _generation_calls(sim_reset)[0]["body"]
    direct = httpx.post(f"{sim_reset.url}/v1/chat/completions", json=body)
    expected = _tool_deltas(_sse_chunks(direct.text))
    assert len(expected) >= 4  # name header plus argument fragments
    assert received == expected
    arguments = "".join(d.get("function", {}).get("arguments", "") for d in received)
    assert json.loads(arguments) == {"name": ASK[:40]}

    _reset(sim_reset)
    call_id = next(iter(ids))
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "lookup_constant", "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": TOOL_OUTPUT},
    ]
    with client.chat.completions.with_streaming_response.create(
        model="ai-router",
        messages=messages,
        tools=TOOLS,
        stream=True,
    ) as response:
        assert response.headers["x-ai-router-route"] == "COMPLEX"
        assert "tool loop" in response.headers["x-ai-router-reason"]
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text.startswith(f"[sim:{XAI_MODEL}] tool said: 18C and sunny")
    assert not _classifier_calls(sim_reset)


def test_unknown_tool_loop_is_decided_on_the_human_turn_not_the_tool_output(router, sim_reset):
    """After a restart the tool-call id is unknown: the human's ask decides, as it did at the start."""
    messages = [
        {"role": "user", "content": ASK},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_from_before_a_restart",
                    "type": "function",
                    "function": {"name": "lookup_constant", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_from_before_a_restart", "content": TOOL_OUTPUT},
    ]
    raw = router.client().chat.completions.with_raw_response.create(
        model="ai-router", messages=messages, tools=TOOLS
    )
    assert raw.headers["x-ai-router-route"] == "COMPLEX" and raw.headers["x-ai-router-reason"] == "classifier"
    classifier = _classifier_calls(sim_reset)
    assert len(classifier) == 1
    assert "18C" not in json.dumps(classifier[0]["body"]["messages"])  # tool output is never classified


def test_meta_request_never_carries_tools(router, sim_reset):
    title_task = (
        "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n"
        '### Output:\nJSON format: { "title": "your concise title here" }\n'
        "### Chat History:\n<chat_history>\nUSER: lookup_constant for pi?\nASSISTANT: \n</chat_history>"
    )
    raw = router.client().chat.completions.with_raw_response.create(
        model="ai-router",
        messages=[{"role": "user", "content": title_task}],
        tools=TOOLS,
        tool_choice="auto",
    )
    assert raw.headers["x-ai-router-route"] == "META"
    assert raw.parse().choices[0].finish_reason == "stop"
    sent = _generation_calls(sim_reset)[0]["body"]
    assert "tools" not in sent and "tool_choice" not in sent


def test_structured_output_passes_through(router, sim_reset):
    schema = {"name": "answer", "schema": {"type": "object", "properties": {"answer": {"type": "string"}}}}
    completion = router.client().chat.completions.create(
        model="ai-router",
        messages=[{"role": "user", "content": "hello, answer in JSON"}],
        response_format={"type": "json_schema", "json_schema": schema},
    )
    assert json.loads(completion.choices[0].message.content)["answer"].startswith(f"[sim:{PRIMARY_MODEL}]")
    assert _generation_calls(sim_reset)[0]["body"]["response_format"] == {
        "type": "json_schema",
        "json_schema": schema,
    }


@pytest.fixture(scope="module")
def router_tools_off(sim, tmp_path_factory):
    """xAI takes no tools; the primary does."""
    tmp = tmp_path_factory.mktemp("tools-off")
    server = start_router(sim_env(sim, XAI_SUPPORTS_TOOLS="false"), tmp)
    yield server
    stop_router(server)


@pytest.fixture(scope="module")
def router_no_tools_anywhere(sim, tmp_path_factory):
    """No xAI key and a primary that takes no tools: nothing can serve a request with tools."""
    tmp = tmp_path_factory.mktemp("no-tools")
    env = sim_env(sim, PRIMARY_SUPPORTS_TOOLS="false")
    env["XAI_API_KEY"] = ""
    server = start_router(env, tmp)
    yield server
    stop_router(server)


def test_tools_move_to_a_tool_capable_backend_of_the_route(router_tools_off, sim_reset):
    raw = router_tools_off.client().chat.completions.with_raw_response.create(
        model="ai-router",
        messages=[{"role": "user", "content": ASK}],
        tools=TOOLS,
    )
    assert raw.headers["x-ai-router-route"] == "COMPLEX" and raw.headers["x-ai-router-backend"] == "primary"
    assert (
        "xai takes no tools (XAI_SUPPORTS_TOOLS=false): served by primary"
        in raw.headers["x-ai-router-reason"]
    )
    models = [c["model"] for c in _generation_calls(sim_reset)]
    assert models == [PRIMARY_MODEL]  # xAI never saw the tools
    # Without tools the same ask still goes to xAI.
    raw = router_tools_off.client().chat.completions.with_raw_response.create(
        model="ai-router",
        messages=[{"role": "user", "content": ASK}],
    )
    assert raw.headers["x-ai-router-backend"] == "xai"


@pytest.mark.parametrize("stream", [False, True])
def test_tools_to_a_backend_without_tool_support_are_refused(router_no_tools_anywhere, sim_reset, stream):
    import openai

    client = router_no_tools_anywhere.client()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="ai-router",
            messages=[{"role": "user", "content": "Write a sort function"}],
            tools=TOOLS,
            stream=stream,
        )
    error = caught.value.body
    assert caught.value.status_code == 400 and error["code"] == "tools_not_supported"
    assert "PRIMARY_SUPPORTS_TOOLS=false" in error["message"] and error["type"] == "invalid_request_error"
    assert not _generation_calls(sim_reset)  # nothing was sent to a backend that cannot take tools
    answer = client.chat.completions.create(
        model="ai-router", messages=[{"role": "user", "content": "Write a sort"}]
    )
    assert answer.choices[0].message.content.startswith(f"[sim:{PRIMARY_MODEL}]")


def test_decide_keeps_tools_off_backends_that_do_not_take_them():
    from core.settings import Settings
    from core.routes import decide

    no_xai_tools = Settings(xai_api_key="k", xai_supports_tools=False)
    assert decide("COMPLEX", "classifier", no_xai_tools)["backend"] == "xai"  # no tools: unchanged
    moved = decide("COMPLEX", "classifier", no_xai_tools, tools=True)
    assert moved["backend"] == "primary" and "error" not in moved
    simple = decide(
        "SIMPLE",
        "classifier",
        Settings(simple_to_classifier=True, classifier_supports_tools=False),
        tools=True,
    )
    assert simple["backend"] == "primary"  # the route's own backend takes them
    refused = decide("MODERATE", "classifier", Settings(primary_supports_tools=False), tools=True)
    assert refused["error"]["status_code"] == 400 and refused["error"]["kind"] == "tools_not_supported"
    meta = decide("META", "meta rule", Settings(primary_supports_tools=False), tools=True)
    assert "error" not in meta  # META strips tools instead of sending them
    vision = decide("VISION", "images", Settings(xai_api_key=None))
    assert (
        vision["error"]["kind"] == "backend_not_configured"
        and "VISION_BASE_URL" in vision["error"]["message"]
    )
