"""Bad input gets a clear OpenAI-style error, never a stack trace."""

from __future__ import annotations

import httpx
import openai
import pytest


@pytest.mark.parametrize(("body", "fragment"), [
    ({}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": "hello"}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "role"),
    ({"messages": [{"content": "hi"}]}, "role"),
    ({"messages": [{"role": "user", "content": 42}]}, "content"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream": "yes please"}, "stream"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, "temperature"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}, "max_tokens"),
])
def test_invalid_bodies_are_400_with_openai_shape(router, body, fragment):
    response = httpx.post(f"{router.v1}/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert fragment in error["message"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(("content", "headers", "status"), [
    (b"{not json", {"content-type": "application/json"}, 400),
    (b"", {"content-type": "application/json"}, 400),
    (b"[1, 2]", {"content-type": "application/json"}, 400),
    (b"--x\r\n", {"content-type": "multipart/form-data; boundary=x"}, 415),
])
def test_malformed_bodies(router, content, headers, status):
    response = httpx.post(f"{router.v1}/chat/completions", content=content, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_huge_body_is_413(router):
    huge = "x" * (21 * 1024 * 1024)
    response = httpx.post(f"{router.v1}/chat/completions", json={"messages": [{"role": "user", "content": huge}]})
    assert response.status_code == 413
    assert "MAX_REQUEST_BYTES" in response.json()["error"]["message"]


def test_openai_client_raises_bad_request(router):
    with pytest.raises(openai.BadRequestError) as caught:
        router.client().chat.completions.create(model="ai-router", messages=[])
    assert caught.value.status_code == 400
    assert caught.value.body["type"] == "invalid_request_error"


def test_unknown_path_is_openai_404(router):
    response = httpx.get(f"{router.v1}/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_unknown_fields_pass_through(router, sim_reset):
    from tests.conftest import PRIMARY_MODEL, sim_calls

    router.client().chat.completions.create(
        model="ai-router", messages=[{"role": "user", "content": "hello"}],
        extra_body={"top_k": 20, "chat_template_kwargs": {"enable_thinking": False}},
    )
    sent = [c for c in sim_calls(sim_reset) if c["model"] == PRIMARY_MODEL][0]["body"]
    assert sent["top_k"] == 20 and sent["chat_template_kwargs"] == {"enable_thinking": False}
