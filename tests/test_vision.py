"""Images: detected without a model call, sent to the vision backend, refused clearly without one."""

from __future__ import annotations

import base64
import json

import httpx
import openai
import pytest

from core.messages import has_images, redact_images
from core.backends.steps import step_record
from tests.conftest import CLASSIFIER_MODEL, sim_calls, sim_env, start_router, stop_router

XAI_MODEL = "grok-4-1-fast-reasoning"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40).decode()  # 10248 bytes
DATA_URL = f"data:image/png;base64,{PNG}"
HTTP_URL = "https://images.example.com/cat.png?signature=SECRET-TOKEN"


def _image_message(url: str, text: str = "What is in this picture?") -> dict:
    return {
        "role": "user",
        "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}],
    }


@pytest.fixture(scope="module")
def router_own_vision(sim, tmp_path_factory):
    """A router with its own vision backend, which takes no tools."""
    tmp = tmp_path_factory.mktemp("vision")
    env = sim_env(
        sim, VISION_BASE_URL=f"{sim.url}/v1", VISION_MODEL="sim-vision", VISION_SUPPORTS_TOOLS="false"
    )
    server = start_router(env, tmp)
    yield server
    stop_router(server)


@pytest.mark.parametrize("url", [DATA_URL, HTTP_URL], ids=["data-url", "http-url"])
@pytest.mark.parametrize("stream", [False, True])
def test_image_goes_to_xai_by_default(router, sim_reset, url, stream):
    messages = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi!"},
        _image_message(url),
    ]
    with router.client().chat.completions.with_streaming_response.create(
        model="ai-router",
        messages=messages,
        stream=stream,
    ) as response:
        assert response.headers["x-ai-router-route"] == "VISION"
        assert response.headers["x-ai-router-backend"] == "vision"
        assert response.headers["x-ai-router-model"] == XAI_MODEL
        assert response.headers["x-ai-router-reason"] == "images in the conversation"
        response.read()
    calls = sim_calls(sim_reset)
    assert not [c for c in calls if c["model"] == CLASSIFIER_MODEL]  # decided without any model call
    sent = [c for c in calls if c["model"] == XAI_MODEL][0]["body"]["messages"]
    assert sent[-1] == messages[-1]  # the image reaches the vision model untouched
    assert "can see images" in sent[0]["content"]  # prompts/vision/system.md


def test_image_goes_to_the_configured_vision_backend(router_own_vision, sim_reset):
    completion = router_own_vision.client().chat.completions.create(
        model="ai-router", messages=[_image_message(DATA_URL)]
    )
    assert completion.choices[0].message.content.startswith("[sim:sim-vision]")
    assert [c["model"] for c in sim_calls(sim_reset)] == ["sim-vision"]


def test_image_with_tools_to_a_vision_backend_without_tools_is_refused(router_own_vision, sim_reset):
    tools = [{"type": "function", "function": {"name": "zoom", "parameters": {"type": "object"}}}]
    with pytest.raises(openai.BadRequestError) as caught:
        router_own_vision.client().chat.completions.create(
            model="ai-router", messages=[_image_message(DATA_URL)], tools=tools
        )
    assert caught.value.body["code"] == "tools_not_supported"
    assert "VISION_SUPPORTS_TOOLS=false" in caught.value.body["message"]
    assert sim_calls(sim_reset) == []


@pytest.mark.parametrize("stream", [False, True])
def test_image_without_vision_backend_is_a_clear_400(router_without_xai, sim_reset, stream):
    with pytest.raises(openai.BadRequestError) as caught:
        router_without_xai.client().chat.completions.create(
            model="ai-router", messages=[_image_message(DATA_URL)], stream=stream
        )
    error = caught.value.body
    assert error["code"] == "backend_not_configured" and error["type"] == "invalid_request_error"
    assert "VISION_BASE_URL" in error["message"] and "Traceback" not in error["message"]
    assert sim_calls(sim_reset) == []  # never sent to the text-only primary
    decision = httpx.post(
        f"{router_without_xai.url}/api/route", json={"dry_run": True, "messages": [_image_message(HTTP_URL)]}
    ).json()
    assert decision["route_label"] == "VISION"


def test_images_are_recorded_by_type_and_size_only():
    messages = [
        _image_message(DATA_URL),
        _image_message(HTTP_URL, "and this one?"),
        {"role": "user", "content": "x"},
    ]
    redacted = redact_images(messages)
    text = str(redacted)
    assert PNG[:40] not in text and "SECRET-TOKEN" not in text
    assert redacted[0]["content"][1]["image_url"]["url"] == "<image: data:image/png, 10248 bytes>"
    assert redacted[1]["content"][1]["image_url"]["url"] == "<image: https://images.example.com/…>"
    assert redacted[1]["content"][0] == {"type": "text", "text": "and this one?"}  # text parts stay
    assert messages[0]["content"][1]["image_url"]["url"] == DATA_URL  # the request itself is not changed
    text_only = [{"role": "user", "content": "no images"}]
    assert redact_images(text_only) is text_only and not has_images(text_only)


def test_session_steps_never_carry_image_bytes():
    from core.backends.client import Backend

    step = step_record(
        "generate", Backend("xai", "http://x/v1", "m"), "/chat/completions", [_image_message(DATA_URL)], 0.0
    )
    assert PNG[:40] not in str(step["messages_sent"])
    assert "10248 bytes" in str(step["messages_sent"])


def test_session_record_and_trace_keep_no_image_bytes(router, sim_reset):
    import time

    from tests.conftest import wait_for_record

    completion = router.client().chat.completions.create(
        model="ai-router", messages=[_image_message(DATA_URL)]
    )
    record = wait_for_record(router, completion.id)  # validated against the session schema
    assert record["route_label"] == "VISION" and record["route"] == "vision"
    assert record["served_model"] == XAI_MODEL and record["user_query"] == "What is in this picture?"
    deadline = time.monotonic() + 10
    while not (traces := list(router.trace_dir.glob(f"*_{completion.id}.jsonl"))):
        assert time.monotonic() < deadline, "no trace written"
        time.sleep(0.02)  # bounded poll: the writer thread writes the trace after the record
    blob = json.dumps(record) + traces[0].read_text()
    assert PNG[:40] not in blob and PNG[-40:] not in blob
