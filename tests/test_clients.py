"""Real clients of the router's other two APIs, against a real router on the simulator.

- the `openai` SDK on the Responses API: create, stream, a function-tool round trip,
  `previous_response_id` across two turns answered on different routes, and across two
  routers sharing a real Redis; GET/DELETE and who may read a stored response;
- the `openai-agents` SDK on its default model (the Responses API) with a function tool;
- the `anthropic` SDK on the Messages API: create, stream, a tool round trip, errors in
  Anthropic's shape, `x-api-key`, token counting.

Each answer is checked where the router shows its work: the decision headers, the
simulator's record of what the backends were sent, and the session record.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx
import jsonschema
import openai
import pytest

from tests.conftest import (
    CLASSIFIER_MODEL,
    PRIMARY_MODEL,
    Router,
    sim_calls,
    sim_env,
    start_router,
    stop_router,
    wait_for_record,
)
from tests.redis_server import RedisServer

XAI_MODEL = "grok-4-1-fast-reasoning"
KEY_A, KEY_B = "client-key-a-0123456789", "client-key-b-9876543210"
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                  "additionalProperties": False}
RESPONSES_TOOL = {"type": "function", "name": "get_weather", "description": "Current weather for a city.",
                  "parameters": WEATHER_SCHEMA}
ANTHROPIC_TOOL = {"name": "get_weather", "description": "Current weather for a city.", "input_schema": WEATHER_SCHEMA}


def _generations(sim) -> list[dict]:
    """The generation calls the simulator received (the classifier's left out)."""
    return [c for c in sim_calls(sim) if c["path"].endswith("/chat/completions") and c["model"] != CLASSIFIER_MODEL]


@pytest.fixture(scope="module")
def keyed_router(sim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """A router that needs a client key: stored responses belong to the key that made them."""
    server = start_router(sim_env(sim, ROUTER_API_KEYS=f"{KEY_A},{KEY_B}"), tmp_path_factory.mktemp("keyed"))
    yield server
    stop_router(server)


# --- the openai SDK on the Responses API ------------------------------------------------------

def test_responses_create_runs_the_chat_path(router, sim_reset):
    raw = router.client().responses.with_raw_response.create(
        model="ai-router-local", input="Tell me about sorting algorithms", instructions="Answer briefly.",
        max_output_tokens=200, metadata={"ticket": "42"})
    response = raw.parse()
    assert response.id.startswith("resp_") and response.object == "response" and response.status == "completed"
    assert response.model == "ai-router-local"  # the name the client asked for
    assert response.output_text.startswith(f"[sim:{PRIMARY_MODEL}]") and response.metadata == {"ticket": "42"}
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens > 0
    assert raw.headers["x-ai-router-route"] == "MODERATE" and raw.headers["x-ai-router-backend"] == "primary"
    (sent,) = _generations(sim_reset)
    assert sent["messages"][-1] == {"role": "user", "content": "Tell me about sorting algorithms"}
    assert "Answer briefly." in sent["messages"][0]["content"] and sent["body"]["max_tokens"] == 200
    record = wait_for_record(router, raw.headers["x-session-id"])
    assert record["endpoint"] == "responses" and record["route_label"] == "MODERATE"
    assert record["user_query"] == "Tell me about sorting algorithms" and record["status_code"] == 200
    assert response.id == "resp_" + raw.headers["x-session-id"].split("-", 1)[1]


def test_feedback_takes_the_responses_and_messages_ids(router, sim_reset):
    # A client of either API holds only its `resp_…` / `msg_…` id: feedback on it reaches the session.
    response = router.client().responses.create(model="ai-router", input="hello there")
    message = _anthropic(router).messages.create(model="claude-sonnet-4-5", max_tokens=50,
                                                 messages=[{"role": "user", "content": "hi there"}])
    for answer_id in (response.id, message.id):
        session_id = "chatcmpl-" + answer_id.split("_", 1)[1]
        wait_for_record(router, session_id)
        posted = httpx.post(f"{router.v1}/feedback", json={"response_id": answer_id, "score": 1,
                                                            "expected_route": "SIMPLE"})
        assert posted.status_code == 200 and posted.json()["response_id"] == session_id, posted.text
    unknown = httpx.post(f"{router.v1}/feedback", json={"response_id": "msg_" + "0" * 32, "score": 1})
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "response_id"


def test_responses_stream_event_sequence(router, sim_reset):
    with router.client().responses.stream(model="ai-router-cloud", input="Explain the proof of Fermat") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == final.output_text and text.startswith(f"[sim:{XAI_MODEL}]")  # the alias forced COMPLEX
    assert final.status == "completed" and final.usage.output_tokens > 0


def test_responses_function_tool_round_trip_keeps_its_route(router, sim_reset):
    client = router.client()
    first = client.responses.with_raw_response.create(
        model="ai-router", input="What's the weather like in Oslo right now?", tools=[RESPONSES_TOOL])
    response = first.parse()
    (call,) = [item for item in response.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id.startswith("call_")
    jsonschema.validate(json.loads(call.arguments), WEATHER_SCHEMA)  # the simulator follows the schema
    tools_sent = _generations(sim_reset)[-1]["body"]["tools"]
    assert tools_sent == [{"type": "function", "function": {"name": "get_weather", "description":
                           "Current weather for a city.", "parameters": WEATHER_SCHEMA}}]
    second = client.responses.with_raw_response.create(
        model="ai-router", previous_response_id=response.id, tools=[RESPONSES_TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "-3C and snowing"}])
    answer = second.parse()
    assert "tool said: -3C and snowing" in answer.output_text
    assert second.headers["x-ai-router-route"] == first.headers["x-ai-router-route"]
    assert "tool loop" in second.headers["x-ai-router-reason"]
    sent = _generations(sim_reset)[-1]["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == call.call_id
    assert sent[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "-3C and snowing"}


def test_previous_response_id_across_routes(router, sim_reset):
    client = router.client()
    first = client.responses.with_raw_response.create(model="ai-router-local", input="My name is Ada Lovelace.")
    second = client.responses.with_raw_response.create(model="ai-router-cloud", input="What is my name?",
                                                       previous_response_id=first.parse().id)
    assert first.headers["x-ai-router-backend"] == "primary" and second.headers["x-ai-router-backend"] == "xai"
    assert second.parse().previous_response_id == first.parse().id
    replayed = _generations(sim_reset)[-1]
    assert replayed["model"] == XAI_MODEL
    turns = [(m["role"], m["content"]) for m in replayed["messages"] if m["role"] != "system"]
    assert turns == [("user", "My name is Ada Lovelace."), ("assistant", first.parse().output_text),
                     ("user", "What is my name?")]


def test_get_delete_and_store_false(router, sim_reset):
    client = router.client()
    kept = client.responses.create(model="ai-router", input="Keep this one")
    assert client.responses.retrieve(kept.id).output_text == kept.output_text
    assert client.responses.delete(kept.id) is None
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.retrieve(kept.id)
    assert gone.value.body["type"] == "not_found_error" and kept.id in gone.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="ai-router", input="again", previous_response_id=kept.id)
    stats = httpx.get(f"{router.url}/stats").json()["conversations"]
    assert stats["stored"] >= 1 and stats["max_entries"] == 1000 and stats["shared"] is False
    unkept = client.responses.create(model="ai-router", input="Forget this one", store=False)
    assert unkept.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unkept.id)


def test_a_stored_response_belongs_to_its_key(keyed_router, sim_reset):
    mine = keyed_router.client(api_key=KEY_A).responses.create(model="ai-router", input="A secret plan")
    other = keyed_router.client(api_key=KEY_B)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="ai-router", input="go on", previous_response_id=mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(mine.id)
    assert keyed_router.client(api_key=KEY_A).responses.retrieve(mine.id).id == mine.id
    with pytest.raises(openai.AuthenticationError):
        keyed_router.client(api_key="wrong").responses.create(model="ai-router", input="hi")


@pytest.mark.parametrize("body, param", [
    ({"model": "ai-router", "input": 42}, "input"),
    ({"model": "ai-router", "input": "x", "stream": "yes"}, "stream"),
    ({"model": "ai-router", "input": [{"type": "message", "role": "user",
                                        "content": [{"type": "input_audio"}]}]}, "input.0.content.0.type"),
])
def test_responses_bad_requests_are_400_in_openai_shape(router, body, param):
    response = httpx.post(f"{router.v1}/responses", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert "x-session-id" in response.headers
    record = wait_for_record(router, response.headers["x-session-id"])
    assert record["endpoint"] == "responses" and record["status_code"] == 400


def test_previous_response_id_across_two_routers_sharing_redis(sim, sim_reset, tmp_path_factory):
    redis = RedisServer(workdir=tmp_path_factory.mktemp("redis")).start()
    routers = []
    try:
        # A deadline that a busy test machine cannot miss: the test is about sharing, not about outages.
        env = sim_env(sim, REDIS_URL=redis.url, REDIS_PREFIX="clients-test", REDIS_TIMEOUT_S="5")
        with ThreadPoolExecutor(2) as pool:  # started side by side
            routers = list(pool.map(lambda i: start_router(env, tmp_path_factory.mktemp(f"replica{i}")), range(2)))
        first = routers[0].client().responses.create(model="ai-router-local", input="My name is Grace Hopper.")
        second = routers[1].client().responses.create(model="ai-router-cloud", input="What is my name?",
                                                      previous_response_id=first.id)
        assert second.status == "completed"
        turns = [m["content"] for m in _generations(sim)[-1]["messages"] if m["role"] == "user"]
        assert turns == ["My name is Grace Hopper.", "What is my name?"]
        assert routers[1].client().responses.retrieve(first.id).output_text == first.output_text
        routers[1].client().responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            routers[0].client().responses.retrieve(first.id)  # deleted for the whole fleet
    finally:
        for server in routers:
            stop_router(server)
        redis.close()


def test_images_go_to_vision_and_web_search_forces_enrich(router, sim_reset):
    client = router.client()
    pixel = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
             "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
    seen = client.responses.with_raw_response.create(model="ai-router", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What is in this picture?"}, {"type": "input_image", "image_url": pixel}]}])
    assert seen.headers["x-ai-router-route"] == "VISION"
    searched = client.responses.with_raw_response.create(model="ai-router", input="Anything new about Rust?",
                                                         tools=[{"type": "web_search"}])
    assert searched.headers["x-ai-router-route"] == "ENRICH" and searched.headers["x-ai-router-path"] == "enrich"
    assert searched.parse().status == "completed"
    pictured = _anthropic(router).messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": pixel.split(",")[1]}},
            {"type": "text", "text": "Describe it"}]}])
    assert pictured.headers["x-ai-router-route"] == "VISION"


def test_budgets_and_limits_cover_both_apis_in_their_own_shapes(sim, sim_reset, tmp_path_factory):
    server = start_router(sim_env(sim, ROUTER_API_KEYS=f"{KEY_A},{KEY_B}", KEY_BUDGET_REQUESTS_PER_DAY="1"),
                          tmp_path_factory.mktemp("budget"))
    try:
        ask = {"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(2):
            last = httpx.post(f"{server.url}/v1/messages", headers={"x-api-key": KEY_A}, json=ask)
        assert last.status_code == 429 and last.json()["type"] == "error"
        assert last.json()["error"]["type"] == "rate_limit_error" and "retry-after" in last.headers
        client = server.client(api_key=KEY_B)
        client.responses.create(model="ai-router", input="hi")
        with pytest.raises(openai.RateLimitError) as refused:
            client.responses.create(model="ai-router", input="again")
        assert refused.value.body["code"] == "budget_exceeded"
    finally:
        stop_router(server)


# --- the openai-agents SDK on its default model (Responses) ------------------------------------

def test_agents_sdk_with_a_function_tool(router, sim_reset):
    from agents import Agent, Runner, function_tool, set_default_openai_client, set_tracing_disabled

    asked: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        asked.append(city)
        return f"Sunny and 21C in {city}"

    set_tracing_disabled(True)
    set_default_openai_client(openai.AsyncOpenAI(base_url=router.v1, api_key="unused", max_retries=0),
                              use_for_tracing=False)
    agent = Agent(name="weather", instructions="Use the tool.", model="ai-router", tools=[get_weather])
    result = asyncio.run(Runner.run(agent, "What is the weather like in Lisbon?"))
    assert len(asked) == 1 and "Sunny and 21C" in result.final_output
    paths = [c["path"] for c in _generations(sim_reset)]
    assert len(paths) == 2  # the call, then the answer from the tool's output
    record_kinds = {type(item).__name__ for item in result.new_items}
    assert {"ToolCallItem", "ToolCallOutputItem", "MessageOutputItem"} <= record_kinds


# --- the anthropic SDK on the Messages API ---------------------------------------------------------

def _anthropic(router: Router, **kwargs) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=router.url, api_key=kwargs.pop("api_key", "unused"), max_retries=0, **kwargs)


def test_anthropic_create(router, sim_reset):
    raw = _anthropic(router).messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=300, system="Be brief.",
        messages=[{"role": "user", "content": "Tell me about sorting algorithms"}])
    message = raw.parse()
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == "claude-sonnet-4-5" and message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text.startswith("[sim:")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["x-ai-router-route"] and raw.headers["x-session-id"].startswith("chatcmpl-")
    record = wait_for_record(router, raw.headers["x-session-id"])
    assert record["endpoint"] == "messages" and record["user_query"] == "Tell me about sorting algorithms"


def test_anthropic_stream_on_a_forced_route(router, sim_reset):
    with _anthropic(router).messages.stream(model="ai-router-cloud", max_tokens=300,
                                            messages=[{"role": "user", "content": "Prove it"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith(f"[sim:{XAI_MODEL}]") and final.content[0].text == text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_anthropic_tool_round_trip_with_a_client_key(keyed_router, sim_reset):
    client = _anthropic(keyed_router, api_key=KEY_A)  # this SDK sends its key as a Bearer token
    question = {"role": "user", "content": "What's the weather in Oslo?"}
    first = client.messages.create(model="claude-sonnet-4-5", max_tokens=300, tools=[ANTHROPIC_TOOL],
                                   messages=[question])
    assert first.stop_reason == "tool_use"
    (call,) = [block for block in first.content if block.type == "tool_use"]
    jsonschema.validate(call.input, WEATHER_SCHEMA)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=300, tools=[ANTHROPIC_TOOL], messages=[
            question, {"role": "assistant", "content": [block.model_dump() for block in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "-3C"}]}],
    ) as stream:
        final = stream.get_final_message()
    assert "tool said: -3C" in final.content[0].text and final.stop_reason == "end_turn"
    sent = _generations(sim_reset)[-1]["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": call.id, "content": "-3C"}


def test_x_api_key_and_anthropic_version_as_claude_code_sends_them(keyed_router, sim_reset):
    response = httpx.post(f"{keyed_router.url}/v1/messages?beta=true",
                          headers={"x-api-key": KEY_B, "anthropic-version": "2023-06-01"},
                          json={"model": "claude-sonnet-4-5", "max_tokens": 50,
                                "messages": [{"role": "user", "content": "hello"}]})
    assert response.status_code == 200
    assert anthropic.types.Message.model_validate(response.json()).content[0].text.startswith("[sim:")
    refused = httpx.post(f"{keyed_router.url}/v1/messages", headers={"x-api-key": "wrong"},
                         json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"


def test_anthropic_errors_in_anthropics_shape(router, keyed_router):
    with pytest.raises(anthropic.BadRequestError) as bad:
        _anthropic(router).messages.create(model="m", max_tokens=0, messages=[{"role": "user", "content": "x"}])
    assert bad.value.body == {"type": "error", "error": {"type": "invalid_request_error",
                                                         "message": bad.value.body["error"]["message"]}}
    assert "max_tokens" in bad.value.body["error"]["message"]
    with pytest.raises(anthropic.AuthenticationError) as denied:
        _anthropic(keyed_router, api_key="wrong").messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert denied.value.body["type"] == "error" and denied.value.body["error"]["type"] == "authentication_error"
    response = httpx.post(f"{router.url}/v1/messages?beta=true", content=b"{not json",
                          headers={"anthropic-version": "2023-06-01"})
    assert response.status_code == 400 and response.json()["type"] == "error"


def test_anthropic_count_tokens_is_an_estimate(router):
    counted = _anthropic(router).messages.count_tokens(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hello " * 100}], tools=[ANTHROPIC_TOOL])
    assert 100 < counted.input_tokens < 400


def test_head_root_and_unknown_endpoint(router):
    assert httpx.head(f"{router.url}/").status_code == 200
    response = httpx.post(f"{router.url}/v1/assistants", json={})
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert "/v1/chat/completions" in message and "/v1/responses" in message and "/v1/messages" in message
