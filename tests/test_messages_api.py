"""The Anthropic Messages translation on its own (no server): request -> chat body, chat -> Message.

Finished messages and stream events are parsed with the official `anthropic` SDK's own
models and its stream accumulator, so a shape the SDK (and Claude Code) cannot read fails here.
"""

from __future__ import annotations

import json

import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from core.http.errors import OpenAIError, anthropic_error_body
from core.http.messages_api import (
    CountTokensRequest,
    MessagesRequest,
    MessagesStream,
    estimate_tokens,
    message_object,
    sse,
    to_chat,
)
from core.http.schemas import validate

EVENTS = TypeAdapter(RawMessageStreamEvent)
WEATHER = {"name": "get_weather", "description": "Weather for a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def _request(**body) -> MessagesRequest:
    return validate(MessagesRequest, {"model": "claude-sonnet-4-5", "max_tokens": 100, **body})


def _chunk(delta: dict | None = None, finish: str | None = None, usage: dict | None = None, **extra) -> dict:
    chunk: dict = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [] if delta is None and finish is None else
                   [{"index": 0, "delta": delta or {}, "finish_reason": finish, **extra}]}
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def test_claude_code_shapes_become_one_chat_conversation():
    request = _request(
        system=[{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "system", "content": "Today is Sunday."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Oslo? And this image:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.org/a.png"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "-3C"}]},
                {"type": "text", "text": "Thanks, and tomorrow?"}]},
        ],
        tools=[WEATHER, {"type": "web_search_20250305", "name": "web_search"},
               {"type": "bash_20250124", "name": "bash"}],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        stop_sequences=["END"], temperature=0.5, top_p=0.9, top_k=5, metadata={"user_id": "u-7"},
        thinking={"type": "enabled", "budget_tokens": 1024}, stream=True,
    )
    out = to_chat(request)
    assert out.forced_route is None  # web search offered beside a function tool: a hint, not forced
    assert out.chat["messages"] == [
        {"role": "system", "content": "You are Claude Code.\n\nToday is Sunday."},
        {"role": "user", "content": [
            {"type": "text", "text": "Weather in Oslo? And this image:"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "image_url", "image_url": {"url": "https://example.org/a.png"}}]},
        {"role": "assistant", "content": "Checking.", "tool_calls": [{
            "id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "-3C"},
        {"role": "user", "content": "Thanks, and tomorrow?"},
    ]
    assert out.chat["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "parameters": WEATHER["input_schema"], "description": "Weather for a city."}}]
    assert out.chat["tool_choice"] == "auto" and out.chat["parallel_tool_calls"] is False
    assert out.chat["stop"] == ["END"] and "user" not in out.chat and out.chat["max_tokens"] == 100
    assert out.chat["stream"] is True and "top_k" not in out.chat and "thinking" not in out.chat


def test_tool_choice_and_web_search_and_output_format():
    assert to_chat(_request(messages=[{"role": "user", "content": "x"}], tools=[WEATHER],
                            tool_choice={"type": "any"})).chat["tool_choice"] == "required"
    assert to_chat(_request(messages=[{"role": "user", "content": "x"}], tools=[WEATHER],
                            tool_choice={"type": "tool", "name": "get_weather"})).chat["tool_choice"] == {
        "type": "function", "function": {"name": "get_weather"}}
    only_search = to_chat(_request(messages=[{"role": "user", "content": "news"}],
                                   tools=[{"type": "web_search_20250305", "name": "web_search"}]))
    assert only_search.forced_route == "ENRICH" and "tools" not in only_search.chat
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    fmt = to_chat(_request(messages=[{"role": "user", "content": "x"}],
                           output_config={"format": {"type": "json_schema", "schema": schema}}))
    assert fmt.chat["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


@pytest.mark.parametrize("body, param", [
    ({"max_tokens": "many"}, "max_tokens"),
    ({"max_tokens": None}, "max_tokens"),
    ({"stream": "yes"}, "stream"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ({"temperature": 1.5}, "temperature"),
])
def test_wrong_types_are_400(body, param):
    with pytest.raises(OpenAIError) as caught:
        validate(MessagesRequest, {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}],
                                   **body})
    assert caught.value.status_code == 400 and caught.value.param == param


@pytest.mark.parametrize("content, param", [
    ([{"type": "document", "source": {}}], "messages.0.content.0.type"),
    ([{"type": "image", "source": {"type": "file", "file_id": "f"}}], "messages.0.content.0.source.type"),
    ([{"type": "tool_result"}], "messages.0.content.0.tool_use_id"),
])
def test_untranslatable_blocks_are_400(content, param):
    with pytest.raises(OpenAIError) as caught:
        to_chat(_request(messages=[{"role": "user", "content": content}]))
    assert caught.value.status_code == 400 and caught.value.param == param


def test_tool_results_carrying_blocks_only_claude_reads_become_text():
    out = to_chat(_request(messages=[
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "ToolSearch", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "tool_reference", "tool_name": "WebFetch"}, {"type": "search_result", "title": "x"}]}]}]))
    assert out.chat["messages"][-1] == {"role": "tool", "tool_call_id": "t1", "content":
                                        '[tool available: WebFetch]\n{"type":"search_result","title":"x"}'}


def test_error_body_is_anthropics_shape():
    assert anthropic_error_body(400, "bad") == {"type": "error",
                                                "error": {"type": "invalid_request_error", "message": "bad"}}
    assert anthropic_error_body(429, "slow")["error"]["type"] == "rate_limit_error"
    assert anthropic_error_body(503, "busy")["error"]["type"] == "overloaded_error"
    assert anthropic_error_body(401, "who")["error"]["type"] == "authentication_error"


def test_count_tokens_is_an_estimate_that_grows_with_the_input():
    short = estimate_tokens(validate(CountTokensRequest, {"messages": [{"role": "user", "content": "hi"}]}))
    long = estimate_tokens(validate(CountTokensRequest, {"messages": [{"role": "user", "content": "hi " * 400}],
                                                         "tools": [WEATHER]}))
    assert 1 <= short < 20 and 250 < long < 450


# --- chat answer -> Message ------------------------------------------------------------------------

def test_message_with_thinking_text_tool_use_and_usage():
    chat = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Let me look.", "reasoning_content": "Need the weather.",
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}}
    message = Message.model_validate(message_object(chat, "msg_1", "claude-sonnet-4-5"))
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[2].input == {"city": "Oslo"} and message.content[2].id == "call_1"
    assert message.stop_reason == "tool_use" and message.model == "claude-sonnet-4-5"
    assert message.usage.input_tokens == 12 and message.usage.output_tokens == 7


@pytest.mark.parametrize("finish, matched, reason, sequence", [
    ("stop", None, "end_turn", None), ("length", None, "max_tokens", None),
    ("stop", "END", "stop_sequence", "END"), ("tool_calls", None, "tool_use", None),
])
def test_stop_reasons(finish, matched, reason, sequence):
    chat = {"choices": [{"index": 0, "finish_reason": finish, "stop_reason": matched,
                         "message": {"role": "assistant", "content": "x"}}]}
    message = message_object(chat, "msg_1", "m", ["END"])
    assert (message["stop_reason"], message["stop_sequence"]) == (reason, sequence)


# --- chat stream -> Messages events -----------------------------------------------------------------

def _run(stream: MessagesStream, chunks: list[dict], error: dict | None = None) -> list[dict]:
    events = stream.start()
    for chunk in chunks:
        events += stream.feed(chunk)
    events += stream.end(error)
    for event in events:
        if event["type"] not in ("error", "ping"):  # the SDK skips pings, raises on errors (checked below)
            EVENTS.validate_python(event)
    return events


def _accumulate(events: list[dict]) -> Message:
    """The message the anthropic SDK's stream accumulator builds from `events`."""
    from anthropic.lib.streaming._messages import accumulate_event

    snapshot = None
    buffers: dict[int, bytes] = {}
    for event in events:
        if event["type"] != "ping":
            snapshot = accumulate_event(event=EVENTS.validate_python(event), current_snapshot=snapshot,
                                        json_bufs=buffers)
    return snapshot


def test_stream_thinking_text_and_split_tool_call():
    head = [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]
    chunks = [_chunk({"role": "assistant", "content": ""}), _chunk({"reasoning_content": "hmm"}),
              _chunk({"content": "Checking"}), _chunk({"tool_calls": head}),
              _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
              _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Oslo"}'}}]}),
              _chunk(finish="tool_calls"),
              _chunk(usage={"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13})]
    events = _run(MessagesStream("msg_1", "claude"), chunks)
    assert [e["type"] for e in events] == [
        "message_start", "ping", "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop", "content_block_start",
        "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    message = _accumulate(events)
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[0].thinking == "hmm" and message.content[1].text == "Checking"
    assert message.content[2].id == "call_a" and message.content[2].input == {"city": "Oslo"}
    assert message.stop_reason == "tool_use" and message.usage.output_tokens == 4


def test_stream_length_cut_is_max_tokens():
    events = _run(MessagesStream("msg_1", "m"), [_chunk({"content": "Hel"}), _chunk(finish="length")])
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"


def test_stream_error_midway_is_an_error_event():
    events = _run(MessagesStream("msg_1", "m"), [_chunk({"content": "Hel"})],
                  error={"status": 502, "message": "backend went away"})
    assert [e["type"] for e in events][-2:] == ["content_block_stop", "error"]
    assert events[-1] == {"type": "error", "error": {"type": "api_error", "message": "backend went away"}}
    assert json.loads(sse(events[-1]).split(b"data: ")[1]) == events[-1]
    assert sse(events[-1]).startswith(b"event: error\n")
