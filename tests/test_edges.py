"""Small truths at the HTTP edge (issue #19): headers' vocabulary, strict booleans and content
types, legacy completions' ids, the overhead of streams."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import wait_for_record

CHAT = {"model": "ai-router", "messages": [{"role": "user", "content": "What is the latest news about Mars?"}]}


def test_backend_header_names_a_backend_and_the_path_header_the_path(router, sim_reset):
    response = httpx.post(f"{router.v1}/chat/completions", json=CHAT, timeout=30)
    assert response.headers["x-ai-router-route"] == "ENRICH"
    assert response.headers["x-ai-router-backend"] == "primary"  # a backend, never a route
    assert response.headers["x-ai-router-path"] == "enrich"
    # The dry run speaks the same vocabulary as the headers.
    decision = httpx.post(f"{router.url}/api/route", json={**CHAT, "dry_run": True}, timeout=30).json()
    assert (decision["route"], decision["backend"], decision["path"]) == ("ENRICH", "primary", "enrich")
    assert decision["route_label"] == "ENRICH"


@pytest.mark.parametrize("value", ["yes", 1, "true", None])
def test_stream_must_be_a_boolean(router, value):
    response = httpx.post(f"{router.v1}/chat/completions", json={**CHAT, "stream": value}, timeout=30)
    assert response.status_code == 400 and response.json()["error"]["param"] == "stream"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "text/xml; charset=utf-8"])
def test_a_body_that_is_not_declared_json_is_refused(router, content_type):
    response = httpx.post(f"{router.v1}/chat/completions", content=httpx.Request("POST", "/", json=CHAT).content,
                          headers={"content-type": content_type}, timeout=30)
    assert response.status_code == 415 and "application/json" in response.json()["error"]["message"]


def test_json_with_a_charset_and_curls_default_type_still_work(router, sim_reset):
    body = httpx.Request("POST", "/", json=CHAT).content
    for content_type in ("application/json; charset=utf-8", "application/x-www-form-urlencoded"):
        response = httpx.post(f"{router.v1}/chat/completions", content=body,
                              headers={"content-type": content_type}, timeout=30)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("stream", [False, True])
def test_legacy_completions_answer_with_an_id_feedback_takes(router, sim_reset, stream):
    client = router.client()
    if stream:
        chunks = list(client.completions.create(model="ai-router", prompt="def add(a, b):", stream=True))
        ids = {c.id for c in chunks}
        assert len(ids) == 1
        answer_id = ids.pop()
    else:
        answer_id = client.completions.create(model="ai-router", prompt="def add(a, b):").id
    record = wait_for_record(router, answer_id)
    assert record["usage"]["completion_tokens"] > 0
    rated = httpx.post(f"{router.v1}/feedback", json={"response_id": answer_id, "score": 1}, timeout=30)
    assert rated.status_code == 200, rated.text


def test_synthetic_requests_are_marked_in_their_record(router, sim_reset):
    marked = httpx.post(f"{router.v1}/chat/completions", json=CHAT, headers={"X-AI-Router-Synthetic": "1"}, timeout=30)
    plain = httpx.post(f"{router.v1}/chat/completions", json=CHAT, timeout=30)
    assert wait_for_record(router, marked.headers["x-session-id"])["synthetic"] is True
    assert wait_for_record(router, plain.headers["x-session-id"])["synthetic"] is False


def test_streams_record_their_overhead(router, sim_reset):
    with httpx.stream("POST", f"{router.v1}/chat/completions", json={**CHAT, "stream": True}, timeout=30) as response:
        assert "x-ai-router-overhead-ms" not in response.headers  # sent before the answer exists
        session_id = response.headers["x-session-id"]
        response.read()
    record = wait_for_record(router, session_id)
    assert record["overhead_ms"] is not None and record["overhead_ms"] >= 0
