"""Tests for the backend simulator (tools.simulator).

They run a real uvicorn server on 127.0.0.1 (``SimServer``) and talk to it with
the official ``openai`` client and ``httpx``, exactly as the router will.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from tools.simulator import SimConfig, SimServer, classify

USER = [{"role": "user", "content": "Tell me about sorting algorithms please"}]
# Shape of the router's rendered classification request: the label descriptions
# mention ENRICH/COMPLEX keywords, so only the tagged query may decide.
ROUTER_PROMPT = (
    "Routes:\n- SIMPLE: greetings, thanks.\n- COMPLEX: research, hard proofs.\n"
    "- ENRICH: news, prices, weather, today.\n<conversation>\n{history}\n</conversation>\n\n"
    "<last_user_message>\n{query}\n</last_user_message>\n\nRoute (one of SIMPLE, MODERATE):"
)
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "web_search", "parameters": {"type": "object"}}},
]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    """One simulator for the module; each test starts from a reset state."""
    with SimServer(SimConfig()) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(sim: SimServer) -> None:
    httpx.post(sim.url + "/sim/reset", timeout=5).raise_for_status()


@pytest.fixture
def http(sim: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=5) as client:
        yield client


@pytest.fixture
def oai(sim: SimServer) -> openai.OpenAI:
    # max_retries=0: fault tests must see the first failure, not a retried success.
    return openai.OpenAI(base_url=sim.url + "/v1", api_key="test-key", max_retries=0, timeout=5)


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Bounded poll (the server runs in another thread; there is nothing to await)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while time.monotonic() < deadline:
        if predicate():
            return True
        tick.wait(0.01)
    return predicate()


def sse_data(lines: list[str]) -> list[str]:
    return [line[len("data: "):] for line in lines if line.startswith("data: ")]


# --------------------------------------------------------------------------- basics


def test_health_and_models(http: httpx.Client, oai: openai.OpenAI) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    ids = {m.id for m in oai.models.list()}
    assert {"sim-primary", "sim-classifier", "grok-4-1-fast-reasoning", "sim-embed"} <= ids


def test_chat_non_stream(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(model="sim-primary", messages=USER)
    content = r.choices[0].message.content
    assert r.id.startswith("chatcmpl-") and r.object == "chat.completion" and r.model == "sim-primary"
    assert content.startswith("[sim:sim-primary] ")
    assert len(content.split(" ")) == 12 and r.usage.completion_tokens == 12
    assert r.usage.prompt_tokens == 6 and r.usage.total_tokens == 18
    assert r.choices[0].finish_reason == "stop"
    again = oai.chat.completions.create(model="sim-primary", messages=USER)
    assert again.choices[0].message.content == content  # deterministic


def test_chat_max_tokens_truncates(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(model="sim-primary", messages=USER, max_tokens=3)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3
    r = oai.chat.completions.create(model="sim-primary", messages=USER, max_completion_tokens=2)
    assert r.choices[0].message.content == "[sim:sim-primary] Tell "


def test_chat_stream_chunks_and_usage(oai: openai.OpenAI, http: httpx.Client) -> None:
    full = oai.chat.completions.create(model="sim-primary", messages=USER).choices[0].message.content
    chunks = list(oai.chat.completions.create(model="sim-primary", messages=USER, stream=True,
                                              stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == ""
    pieces = [c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content]
    assert len(pieces) == 12 and "".join(pieces) == full
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 12

    body = {"model": "sim-primary", "messages": USER, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        data = sse_data(list(r.iter_lines()))
    assert data[-1] == "[DONE]"
    assert all(json.loads(d)["object"] == "chat.completion.chunk" for d in data[:-1])
    assert all("usage" not in json.loads(d) for d in data[:-1])  # no include_usage, no usage chunk


# --------------------------------------------------------------------------- classifier


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("What's the latest news about AI?", "ENRICH"),
        ("bitcoin PRICE right now", "ENRICH"),
        ("Prove that sqrt(2) is irrational", "COMPLEX"),
        ("hi there!", "SIMPLE"),
        ("Thank you", "SIMPLE"),
        ("Explain this algorithm to me", "MODERATE"),  # "this" must not match "hi"
        ("hello, could you walk me through configuring a reverse proxy with TLS and caching", "MODERATE"),
        ("latest news #route=CUSTOM_X", "CUSTOM_X"),
        ("Labels: ENRICH needs current news; COMPLEX needs research.\n<query>hey</query>", "SIMPLE"),
        ("Labels: ENRICH = current news.\nQuery: how do I write a for loop", "MODERATE"),
        (ROUTER_PROMPT.format(history="user: latest news?", query="thanks!"), "SIMPLE"),
        (ROUTER_PROMPT.format(history="", query="Derive the Navier-Stokes equations"), "COMPLEX"),
    ],
)
def test_classifier_heuristic(oai: openai.OpenAI, text: str, label: str) -> None:
    assert classify(text) == label
    r = oai.chat.completions.create(model="sim-classifier", messages=[
        {"role": "system", "content": "You are a router."}, {"role": "user", "content": text}])
    assert r.choices[0].message.content == label


def test_classifier_fixed_answer_and_stream(oai: openai.OpenAI, http: httpx.Client) -> None:
    cfg = http.post("/sim/config", json={"classifier_answer": "COMPLEX"}).json()
    assert cfg["classifier_answer"] == "COMPLEX"
    r = oai.chat.completions.create(model="sim-classifier", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "COMPLEX"
    http.post("/sim/config", json={"classifier_answer": ""})  # an empty answer is a valid failure mode
    r = oai.chat.completions.create(model="sim-classifier", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == ""
    http.post("/sim/config", json={"classifier_answer": "COMPLEX"})
    stream = oai.chat.completions.create(model="sim-classifier", messages=[{"role": "user", "content": "x"}],
                                         stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "COMPLEX"


# --------------------------------------------------------------------------- tools, reasoning, formats


def test_tool_call_non_stream(oai: openai.OpenAI) -> None:
    text = "Please use web_search to look up the weather in Paris tomorrow"
    r = oai.chat.completions.create(model="sim-primary", tools=TOOLS,
                                    messages=[{"role": "user", "content": text}])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function" and call.function.name == "web_search"
    assert json.loads(call.function.arguments) == {"query": text[:40]}

    r = oai.chat.completions.create(model="sim-primary", tools=TOOLS,
                                    messages=[{"role": "user", "content": "do it #tool"}])
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather"
    r = oai.chat.completions.create(model="sim-primary", messages=USER, tools=TOOLS)
    assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason == "stop"


def test_tool_call_stream_fragments(oai: openai.OpenAI) -> None:
    text = 'find "quoted" news with web_search'
    chunks = list(oai.chat.completions.create(model="sim-primary", tools=TOOLS, stream=True,
                                              messages=[{"role": "user", "content": text}]))
    first = chunks[0].choices[0].delta
    assert first.role == "assistant"
    assert first.tool_calls[0].id.startswith("call_") and first.tool_calls[0].function.name == "web_search"
    assert first.tool_calls[0].function.arguments == ""
    fragments = [c.choices[0].delta.tool_calls[0].function.arguments for c in chunks[1:]
                 if c.choices and c.choices[0].delta.tool_calls]
    assert len(fragments) >= 3
    assert json.loads("".join(fragments)) == {"query": text[:40]}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_result_turn(oai: openai.OpenAI) -> None:
    messages = [
        {"role": "user", "content": "weather? use get_weather"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 degrees in Paris"},
    ]
    r = oai.chat.completions.create(model="sim-primary", messages=messages, tools=TOOLS)
    assert "tool said: Sunny, 21 degrees in Paris" in r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"


def test_reasoning_content(http: httpx.Client) -> None:
    http.post("/sim/config", json={"reasoning": True})
    body = {"model": "sim-primary", "messages": USER, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as r:
        data = sse_data(list(r.iter_lines()))
    deltas = [json.loads(d)["choices"][0]["delta"] for d in data[:-1]]
    kinds = [next(iter(d)) for d in deltas[1:] if d]
    assert "reasoning_content" in kinds and kinds.index("reasoning_content") < kinds.index("content")
    assert '"reasoning_content"' in "".join(data)
    msg = http.post("/v1/chat/completions", json={**body, "stream": False}).json()["choices"][0]["message"]
    assert msg["reasoning_content"] and msg["content"].startswith("[sim:")


def test_response_format_json_and_model_override(oai: openai.OpenAI, http: httpx.Client) -> None:
    r = oai.chat.completions.create(model="sim-primary", messages=USER,
                                    response_format={"type": "json_object"})
    assert json.loads(r.choices[0].message.content)["answer"].startswith("[sim:sim-primary]")
    http.post("/sim/config", json={"model_name_override": "sim-substitute"})
    r = oai.chat.completions.create(model="sim-primary", messages=USER)
    assert r.model == "sim-substitute" and "[sim:sim-substitute]" in r.choices[0].message.content


# --------------------------------------------------------------------------- other endpoints


def test_responses_api(http: httpx.Client, oai: openai.OpenAI) -> None:
    body = {"model": "grok-4-1-fast-reasoning",
            "input": [{"role": "user", "content": "latest Mars rover news"}],
            "tools": [{"type": "web_search"}, {"type": "x_search"}]}
    r = http.post("/v1/responses", json=body).json()
    assert r["id"].startswith("resp_") and r["object"] == "response" and r["status"] == "completed"
    assert [o["type"] for o in r["output"]] == ["web_search_call", "x_search_call", "message"]
    assert r["output"][0]["action"] == {"type": "search", "query": "latest Mars rover news"}
    part = r["output"][-1]["content"][0]
    assert part["type"] == "output_text" and "latest Mars rover news" in part["text"]
    ann = part["annotations"][0]
    assert ann["type"] == "url_citation" and part["text"][ann["start_index"]:ann["end_index"]] == "[1]"
    assert r["citations"] == ["https://example.com/a", "https://example.com/b"]
    assert r["usage"]["total_tokens"] == r["usage"]["input_tokens"] + r["usage"]["output_tokens"]

    only_web = http.post("/v1/responses", json={**body, "tools": [{"type": "web_search"}]}).json()
    assert [o["type"] for o in only_web["output"]] == ["web_search_call", "message"]
    parsed = oai.responses.create(model="grok-4-1-fast-reasoning", input="weather today",
                                  tools=[{"type": "web_search"}])
    assert "weather today" in parsed.output_text


def test_embeddings(oai: openai.OpenAI, http: httpx.Client) -> None:
    r = oai.embeddings.create(model="sim-embed", input=["alpha", "beta", "alpha"])  # client asks for base64
    vecs = [d.embedding for d in r.data]
    assert [len(v) for v in vecs] == [8, 8, 8] and vecs[0] == vecs[2] and vecs[0] != vecs[1]
    raw = http.post("/v1/embeddings", json={"model": "sim-embed", "input": "alpha"}).json()
    assert raw["object"] == "list" and raw["data"][0]["index"] == 0
    assert raw["data"][0]["embedding"] == pytest.approx(vecs[0], abs=1e-5)
    assert raw["usage"] == {"prompt_tokens": 1, "total_tokens": 1}


def test_legacy_completions(oai: openai.OpenAI) -> None:
    r = oai.completions.create(model="sim-primary", prompt="once upon a time", max_tokens=4)
    assert r.id.startswith("cmpl-") and r.object == "text_completion"
    assert r.choices[0].text == "[sim:sim-primary] once upon a " and r.choices[0].finish_reason == "length"
    chunks = list(oai.completions.create(model="sim-primary", prompt="once upon a time", stream=True))
    assert "".join(c.choices[0].text for c in chunks).startswith("[sim:sim-primary] once")
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_request_validation_errors(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"error": {"message": r.json()["error"]["message"], "type": "invalid_request_error",
                                  "param": None, "code": None}}
    r = http.post("/v1/chat/completions", json={"model": "sim-primary"})
    assert r.status_code == 400 and "messages" in r.json()["error"]["message"]
    assert http.post("/sim/faults", json={"fault": "nope"}).status_code == 400
    assert http.post("/sim/config", json={"no_such_field": 1}).status_code == 400


# --------------------------------------------------------------------------- faults


def test_fault_500_queue_count_and_matching(oai: openai.OpenAI, http: httpx.Client) -> None:
    http.post("/sim/faults", json={"fault": "500", "count": 2, "model": "sim-primary"})
    oai.chat.completions.create(model="other-model", messages=USER)  # model does not match
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            oai.chat.completions.create(model="sim-primary", messages=USER)
    oai.chat.completions.create(model="sim-primary", messages=USER)  # consumed
    http.post("/sim/faults", json={"fault": "500", "count": -1, "path": "/v1/embeddings"})
    oai.chat.completions.create(model="sim-primary", messages=USER)  # path does not match
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            oai.embeddings.create(model="sim-embed", input="x")
    assert len(http.get("/sim/faults").json()) == 1
    http.post("/sim/reset")
    oai.embeddings.create(model="sim-embed", input="x")
    assert [c["fault"] for c in http.get("/sim/calls").json()] == [None]


def test_fault_429_and_400(http: httpx.Client, oai: openai.OpenAI) -> None:
    http.post("/sim/faults", json={"fault": "429", "retry_after": 7})
    r = http.post("/v1/chat/completions", json={"model": "sim-primary", "messages": USER})
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="sim-primary", messages=USER, extra_headers={"x-sim-fault": "400"})


def test_fault_garbage(http: httpx.Client, oai: openai.OpenAI) -> None:
    r = http.post("/v1/chat/completions", json={"model": "m", "messages": USER},
                  headers={"x-sim-fault": "garbage"})
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()
    with pytest.raises(json.JSONDecodeError):  # the client cannot decode the SSE data line
        list(oai.chat.completions.create(model="m", messages=USER, stream=True,
                                         extra_headers={"x-sim-fault": "garbage"}))


def test_fault_cut(http: httpx.Client, oai: openai.OpenAI) -> None:
    received: list[Any] = []
    with pytest.raises((openai.APIConnectionError, httpx.HTTPError)):
        for chunk in oai.chat.completions.create(model="m", messages=USER, stream=True,
                                                 extra_headers={"x-sim-fault": "cut"}):
            received.append(chunk)
    assert 0 < len(received) < 12
    lines: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        with http.stream("POST", "/v1/chat/completions", headers={"x-sim-fault": "cut"},
                         json={"model": "m", "messages": USER, "stream": True}) as r:
            lines.extend(r.iter_lines())
    assert lines and "data: [DONE]" not in lines
    with pytest.raises(openai.APIConnectionError):  # non-streaming: truncated body
        oai.chat.completions.create(model="m", messages=USER, extra_headers={"x-sim-fault": "cut"})
    assert http.get("/sim/stats").json()["open_streams"] == 0


def test_fault_reset(oai: openai.OpenAI, http: httpx.Client) -> None:
    http.post("/sim/faults", json={"fault": "reset"})
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="m", messages=USER)
    oai.chat.completions.create(model="m", messages=USER)  # server still healthy


def test_fault_hang_client_timeout(oai: openai.OpenAI, http: httpx.Client) -> None:
    http.post("/sim/faults", json={"fault": "hang"})
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        oai.chat.completions.create(model="m", messages=USER, timeout=0.3)
    assert 0.25 < time.monotonic() - start < 1.5
    oai.chat.completions.create(model="m", messages=USER)


def test_hang_released_by_reset(sim: SimServer, http: httpx.Client) -> None:
    result: dict[str, int] = {}

    def call() -> None:
        r = httpx.post(sim.url + "/v1/chat/completions", json={"model": "m", "messages": USER},
                       headers={"x-sim-fault": "hang"}, timeout=5)
        result["status"] = r.status_code

    t = threading.Thread(target=call)
    t.start()
    assert wait_until(lambda: http.get("/sim/stats").json()["calls"] == 1)
    http.post("/sim/reset")
    t.join(timeout=2)
    assert result == {"status": 503}


def test_fault_slow_first_token_and_ttft(oai: openai.OpenAI, http: httpx.Client) -> None:
    http.post("/sim/faults", json={"fault": "slow_first_token", "delay_ms": 150})
    start = time.monotonic()
    r = oai.chat.completions.create(model="m", messages=USER)
    assert time.monotonic() - start >= 0.15 and r.choices[0].message.content.startswith("[sim:m]")
    http.post("/sim/config", json={"ttft_ms": 100})
    start = time.monotonic()
    first = next(iter(oai.chat.completions.create(model="m", messages=USER, stream=True)))
    assert time.monotonic() - start >= 0.1 and first.choices[0].delta.role == "assistant"


# --------------------------------------------------------------------------- recording and stats


def test_calls_recorded_without_api_key() -> None:
    with SimServer(SimConfig(api_key="sim-secret-key")) as sim:
        good = openai.OpenAI(base_url=sim.url + "/v1", api_key="sim-secret-key", max_retries=0, timeout=5)
        bad = openai.OpenAI(base_url=sim.url + "/v1", api_key="wrong", max_retries=0, timeout=5)
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model="sim-primary", messages=USER)
        anon = httpx.post(sim.url + "/v1/responses", json={"model": "grok", "input": "hi"}, timeout=5)
        assert anon.status_code == 401 and anon.json()["error"]["code"] == "invalid_api_key"
        good.chat.completions.create(model="sim-primary", messages=USER, tools=TOOLS,
                                     extra_headers={"x-custom": "sim-secret-key-not-stored"})
        good.responses.create(model="grok-4-1-fast-reasoning", input="news", tools=[{"type": "web_search"}])
        raw = httpx.get(sim.url + "/sim/calls", timeout=5)
        calls = raw.json()
        assert "sim-secret-key" not in raw.text and "sim-secret-key" not in json.dumps(calls)
        assert [(c["path"], c["has_auth"]) for c in calls] == [
            ("/v1/chat/completions", True), ("/v1/responses", False),
            ("/v1/chat/completions", True), ("/v1/responses", True)]
        chat = calls[2]
        assert chat["model"] == "sim-primary" and chat["stream"] is False and chat["tools_count"] == 2
        assert chat["messages"] == USER and chat["body"]["messages"] == USER
        assert calls[3]["messages"] == [{"role": "user", "content": "news"}]
        assert sim.app_state.stats()["calls"] == 4


def test_open_streams_after_client_closes_early(http: httpx.Client) -> None:
    http.post("/sim/config", json={"tokens": 200, "token_delay_ms": 10})
    body = {"model": "sim-primary", "messages": USER, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as r:
        lines = r.iter_lines()
        for _ in range(3):
            next(lines)
        assert http.get("/sim/stats").json()["open_streams"] == 1
    assert wait_until(lambda: http.get("/sim/stats").json()["open_streams"] == 0)
    assert http.get("/sim/stats").json()["cancelled_streams"] == 1


def test_reset_restores_config(http: httpx.Client, oai: openai.OpenAI) -> None:
    http.post("/sim/config", json={"tokens": 3})
    assert oai.chat.completions.create(model="m", messages=USER).usage.completion_tokens == 3
    http.post("/sim/reset")
    assert http.get("/sim/config").json()["tokens"] == 12
    assert http.get("/sim/stats").json() == {"open_streams": 0, "calls": 0, "cancelled_streams": 0,
                                             "faults_triggered": 0}


def test_many_requests_are_fast(http: httpx.Client) -> None:
    body = {"model": "sim-primary", "messages": USER}
    start = time.monotonic()
    for _ in range(300):
        assert http.post("/v1/chat/completions", json=body).status_code == 200
    assert time.monotonic() - start < 1.5


def test_cli_serves() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "tools.simulator", "--port", str(port), "--tokens", "4"]
    proc = subprocess.Popen(cmd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(url + "/health", timeout=0.5).status_code == 200
            except httpx.TransportError:
                return False

        assert wait_until(up, timeout=8), proc.stderr.read() if proc.poll() is not None else "not up"
        r = httpx.post(url + "/v1/chat/completions", json={"model": "x", "messages": USER}).json()
        assert r["usage"]["completion_tokens"] == 4
    finally:
        proc.terminate()
        proc.wait(timeout=5)


# --------------------------------------------------------------------------- tool calls follow the schema

SCHEMA_TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7}, "detailed": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]},
            "note": {"type": "string"}},
            "required": ["city", "unit", "days", "detailed", "tags", "where"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "lookupStockPrice", "parameters": {"type": "object", "properties": {
            "ticker": {"type": ["string", "null"], "maxLength": 5}}, "required": ["ticker"]}}},
]


def test_tool_arguments_are_valid_against_the_offered_schema(oai: openai.OpenAI) -> None:
    import jsonschema

    r = oai.chat.completions.create(model="sim-primary", tools=SCHEMA_TOOLS,
                                    messages=[{"role": "user", "content": "What's the weather like in Paris today?"}])
    (call,) = r.choices[0].message.tool_calls
    assert call.function.name == "get_weather"  # asked for what the tool does, without naming it
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, SCHEMA_TOOLS[0]["function"]["parameters"])
    assert set(arguments) == {"city", "unit", "days", "detailed", "tags", "where"}  # required ones only
    assert arguments["unit"] == "celsius" and arguments["days"] == 1 and len(arguments["tags"]) == 2

    r = oai.chat.completions.create(model="sim-primary", tools=SCHEMA_TOOLS,
                                    messages=[{"role": "user", "content": "Which stock price moved most?"}])
    (call,) = r.choices[0].message.tool_calls
    assert call.function.name == "lookupStockPrice"  # camelCase names are read as words too
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, SCHEMA_TOOLS[1]["function"]["parameters"])
    assert len(arguments["ticker"]) <= 5


def test_no_call_when_the_ask_is_about_something_else(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(model="sim-primary", tools=SCHEMA_TOOLS,
                                    messages=[{"role": "user", "content": "Get me a list of sorting algorithms"}])
    assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason == "stop"
