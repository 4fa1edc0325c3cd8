"""The Responses API translation on its own (no server): request -> chat body, chat -> Responses.

The events a stream produces are checked against the official `openai` SDK's own event
models (`ResponseStreamEvent`), and the finished objects against its `Response` model, so a
shape the SDK (and Codex, which reads the same events) cannot parse fails here.
"""

from __future__ import annotations

import json

import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from core.http.errors import OpenAIError
from core.http.responses_api import (
    ResponsesRequest,
    ResponsesStream,
    ToolMap,
    envelope,
    output_text,
    response_object,
    sse,
    to_chat,
)
from core.http.schemas import validate

EVENTS = TypeAdapter(ResponseStreamEvent)
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def _request(**body) -> ResponsesRequest:
    return validate(ResponsesRequest, {"model": "ai-router", **body})


def _chunk(delta: dict | None = None, finish: str | None = None, usage: dict | None = None) -> dict:
    chunk: dict = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [] if delta is None and finish is None else
                   [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def _base(**body) -> dict:
    return envelope(_request(input="hi", **body), "resp_1", 1700000000, "ai-router")


# --- request -> chat body --------------------------------------------------------------------

def test_string_input_and_instructions():
    out = to_chat(_request(input="Hello", instructions="Be brief.", max_output_tokens=50, temperature=0.2,
                           top_p=0.9, user="u1", metadata={"a": "b"}, store=False, stream=True))
    assert out.chat == {"model": "ai-router", "stream": True, "max_tokens": 50, "temperature": 0.2, "top_p": 0.9,
                        "user": "u1", "messages": [{"role": "system", "content": "Be brief."},
                                                   {"role": "user", "content": "Hello"}]}
    assert out.forced_route is None
    assert out.input_items == [{"type": "message", "role": "user",
                                "content": [{"type": "input_text", "text": "Hello"}]}]


def test_items_developer_images_and_a_tool_round_trip():
    items = [
        {"role": "developer", "content": "You are Codex."},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What is in this picture, and the weather in Paris?"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me check."}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "20C"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
    ]
    out = to_chat(_request(input=items, tools=[WEATHER], tool_choice="auto", parallel_tool_calls=False))
    assert out.chat["messages"] == [
        {"role": "system", "content": "You are Codex."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture, and the weather in Paris?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "20C"},
    ]
    assert out.chat["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city.", "parameters": WEATHER["parameters"]}}]
    assert out.chat["tool_choice"] == "auto" and out.chat["parallel_tool_calls"] is False


def test_history_of_previous_response_comes_first():
    history = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "My name is Ada."}]},
               {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi Ada."}]}]
    out = to_chat(_request(input="What is my name?", instructions="Be kind."), history)
    assert [m["role"] for m in out.chat["messages"]] == ["system", "user", "assistant", "user"]
    assert out.chat["messages"][2]["content"] == "Hi Ada."


def test_web_search_forces_enrich_only_when_asked_for_outright():
    assert to_chat(_request(input="news?", tools=[{"type": "web_search"}])).forced_route == "ENRICH"
    assert "tools" not in to_chat(_request(input="news?", tools=[{"type": "web_search"}])).chat
    both = to_chat(_request(input="news?", tools=[WEATHER, {"type": "web_search"}]))
    assert both.forced_route is None and [t["function"]["name"] for t in both.chat["tools"]] == ["get_weather"]
    chosen = to_chat(_request(input="news?", tools=[WEATHER, {"type": "web_search"}],
                              tool_choice={"type": "web_search"}))
    assert chosen.forced_route == "ENRICH" and "tool_choice" not in chosen.chat


def test_namespace_and_custom_tools_map_both_ways():
    tools = [{"type": "namespace", "name": "crm", "description": "CRM",
              "tools": [{"type": "function", "name": "find", "parameters": {"type": "object"}}]},
             {"type": "custom", "name": "apply_patch", "description": "Patch files."}]
    out = to_chat(_request(input=[
        {"role": "user", "content": "go"},
        {"type": "function_call", "call_id": "c1", "name": "find", "namespace": "crm", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": "done"},
    ], tools=tools, tool_choice={"type": "function", "name": "find", "namespace": "crm"}))
    names = [t["function"]["name"] for t in out.chat["tools"]]
    assert names == ["crm__find", "apply_patch"]
    assert out.chat["tool_choice"] == {"type": "function", "function": {"name": "crm__find"}}
    assert out.chat["messages"][1]["tool_calls"][0]["function"]["name"] == "crm__find"
    assert json.loads(out.chat["messages"][3]["tool_calls"][0]["function"]["arguments"]) == {
        "input": "*** Begin Patch"}
    answer = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [
            {"id": "c3", "type": "function", "function": {"name": "crm__find", "arguments": "{}"}},
            {"id": "c4", "type": "function", "function": {"name": "apply_patch", "arguments": '{"input": "x"}'}}]}}]}
    output = response_object(answer, _base(), out.tools)["output"]
    assert output[0]["type"] == "function_call" and output[0]["name"] == "find" and output[0]["namespace"] == "crm"
    assert output[1] == {**output[1], "type": "custom_tool_call", "name": "apply_patch", "input": "x", "call_id": "c4"}


def test_text_format_becomes_response_format():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    out = to_chat(_request(input="x", text={"format": {"type": "json_schema", "name": "thing", "schema": schema,
                                                       "strict": True}}))
    assert out.chat["response_format"] == {"type": "json_schema",
                                           "json_schema": {"name": "thing", "schema": schema, "strict": True}}
    assert to_chat(_request(input="x", text={"format": {"type": "json_object"}})).chat["response_format"] == {
        "type": "json_object"}
    assert "response_format" not in to_chat(_request(input="x", text={"format": {"type": "text"}})).chat


@pytest.mark.parametrize("body, param", [
    ({"input": 5}, "input"),
    ({"input": "x", "stream": "yes"}, "stream"),
    ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"input": "x", "store": "no"}, "store"),
    ({"input": "x", "tools": "all"}, "tools"),
    ({"input": "x", "temperature": 3}, "temperature"),
    ({"input": "x", "metadata": {"a": 1}}, "metadata.a"),
])
def test_wrong_types_are_400_naming_the_field(body, param):
    with pytest.raises(OpenAIError) as caught:
        validate(ResponsesRequest, body)
    assert caught.value.status_code == 400 and caught.value.param == param


@pytest.mark.parametrize("items, param", [
    ([{"type": "message", "role": "user", "content": [{"type": "input_file", "file_id": "f"}]}],
     "input.0.content.0.type"),
    ([{"type": "message", "role": "user", "content": [{"type": "input_image", "file_id": "f"}]}],
     "input.0.content.0.image_url"),
    ([{"type": "message", "role": "robot", "content": "x"}], "input.0.role"),
    ([{"type": "function_call", "call_id": "c", "name": "f", "arguments": {"a": 1}}], "input.0.arguments"),
    ([{"type": "computer_call"}], "input.0.type"),
    ([{"role": "system", "content": "only a system message"}], "input"),
])
def test_untranslatable_items_are_400(items, param):
    with pytest.raises(OpenAIError) as caught:
        to_chat(_request(input=items))
    assert caught.value.status_code == 400 and caught.value.param == param


# --- chat answer -> Responses object ---------------------------------------------------------------

def test_answer_with_reasoning_text_and_usage():
    chat = {"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "Paris.", "reasoning_content": "The capital of France..."}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
    response = response_object(chat, _base(), ToolMap())
    parsed = Response.model_validate(response)
    assert parsed.status == "completed" and parsed.output_text == "Paris." == output_text(response)
    assert [item.type for item in parsed.output] == ["reasoning", "message"]
    assert parsed.output[0].content[0].text == "The capital of France..."
    assert parsed.usage.input_tokens == 10 and parsed.usage.output_tokens == 5 and parsed.usage.total_tokens == 15
    assert parsed.id == "resp_1" and parsed.model == "ai-router"


def test_answer_cut_by_length_is_incomplete():
    chat = {"choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Par"}}]}
    parsed = Response.model_validate(response_object(chat, _base(max_output_tokens=1), ToolMap()))
    assert parsed.status == "incomplete" and parsed.incomplete_details.reason == "max_output_tokens"


def test_answer_with_a_tool_call():
    chat = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [
            {"id": "call_9", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]}}]}
    parsed = Response.model_validate(response_object(chat, _base(tools=[WEATHER]), ToolMap()))
    (call,) = parsed.output
    assert call.type == "function_call" and call.call_id == "call_9" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Oslo"} and call.id.startswith("fc_")


# --- chat stream -> Responses events ---------------------------------------------------------------

def _run(stream: ResponsesStream, chunks: list[dict], error: dict | None = None) -> list[dict]:
    events = stream.start()
    for chunk in chunks:
        events += stream.feed(chunk)
    events += stream.end(error)
    for event in events:  # every event parses as the SDK's own model
        EVENTS.validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def test_text_stream_event_sequence():
    chunks = [_chunk({"role": "assistant", "content": ""}), _chunk({"content": "Hel"}), _chunk({"content": "lo"}),
              _chunk(finish="stop"), _chunk(usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})]
    events = _run(ResponsesStream(_base(), ToolMap()), chunks)
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert events[-4]["text"] == "Hello"
    done = Response.model_validate(events[-1]["response"])
    assert done.output_text == "Hello" and done.usage.total_tokens == 5 and done.status == "completed"
    assert events[2]["item"]["id"] == events[-2]["item"]["id"] == events[4]["item_id"]


def test_reasoning_then_text_stream():
    chunks = [_chunk({"role": "assistant", "content": ""}), _chunk({"reasoning_content": "think "}),
              _chunk({"reasoning_content": "hard"}), _chunk({"content": "42"}), _chunk(finish="stop")]
    events = _run(ResponsesStream(_base(), ToolMap()), chunks)
    kinds = [e["type"] for e in events]
    assert kinds[2:] == [
        "response.output_item.added", "response.content_part.added", "response.reasoning_text.delta",
        "response.reasoning_text.delta", "response.reasoning_text.done", "response.content_part.done",
        "response.output_item.done", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.completed"]
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["reasoning", "message"]
    assert final["output"][0]["content"][0]["text"] == "think hard"
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.done"] == [0, 1]


def test_tool_calls_split_across_chunks():
    head = [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]
    chunks = [_chunk({"role": "assistant", "tool_calls": head}),
              _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
              _chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                                      "function": {"name": "get_weather", "arguments": '{"city":'}}]}),
              _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Oslo"}'}}]}),
              _chunk({"tool_calls": [{"index": 1, "function": {"arguments": '"Rome"}'}}]}),
              _chunk(finish="tool_calls")]
    events = _run(ResponsesStream(_base(tools=[WEATHER]), ToolMap()), chunks)
    deltas = {}
    for e in events:
        if e["type"] == "response.function_call_arguments.delta":
            deltas.setdefault(e["output_index"], []).append(e["delta"])
    assert {k: "".join(v) for k, v in deltas.items()} == {0: '{"city":"Oslo"}', 1: '{"city":"Rome"}'}
    dones = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [(d["output_index"], d["arguments"]) for d in dones] == [(0, '{"city":"Oslo"}'), (1, '{"city":"Rome"}')]
    final = Response.model_validate(events[-1]["response"])
    assert [(c.call_id, c.name, c.arguments) for c in final.output] == [
        ("call_a", "get_weather", '{"city":"Oslo"}'), ("call_b", "get_weather", '{"city":"Rome"}')]


def test_length_cut_ends_incomplete():
    events = _run(ResponsesStream(_base(max_output_tokens=2), ToolMap()),
                  [_chunk({"content": "Hel"}), _chunk({"content": "lo"}), _chunk(finish="length")])
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_error_midway_closes_items_then_fails():
    events = _run(ResponsesStream(_base(), ToolMap()), [_chunk({"content": "Hel"})],
                  error={"status": 502, "message": "backend went away"})
    kinds = [e["type"] for e in events]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.failed"]
    failed = Response.model_validate(events[-1]["response"])
    assert failed.status == "failed" and failed.error.message == "backend went away"
    assert failed.error.code == "server_error"
    assert failed.output_text == "Hel"  # what reached the client before the failure is kept


def test_sse_framing_names_the_event():
    frame = sse({"type": "response.created", "sequence_number": 0})
    assert frame.startswith(b"event: response.created\ndata: {") and frame.endswith(b"}\n\n")
