"""Property-based: whatever a client sends, the answer is a success or a clean OpenAI error."""

from __future__ import annotations

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)

roles = st.one_of(st.sampled_from(["system", "developer", "user", "assistant", "tool"]), json_values)
parts = st.lists(st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(st.text(max_size=40), json_scalars)}),
    st.fixed_dictionaries({"type": st.just("image_url"),
                           "image_url": st.fixed_dictionaries({"url": st.just("data:image/png;base64,iVBORw0KGgo=")})}),
    st.fixed_dictionaries({"type": st.sampled_from(["input_audio", "file", "video"])}),
    json_values,
), max_size=3)
messages = st.lists(st.one_of(
    st.fixed_dictionaries({"role": roles, "content": st.one_of(st.text(max_size=80), parts, json_values)}),
    json_values,
), max_size=4)
bodies = st.fixed_dictionaries(
    {"messages": st.one_of(messages, json_values)},
    optional={
        "model": json_values, "stream": st.one_of(st.booleans(), json_values),
        "temperature": st.one_of(st.floats(-1, 3), json_values), "max_tokens": st.one_of(st.integers(-5, 50), json_values),
        "top_p": json_values, "stop": json_values, "tools": json_values, "stream_options": json_values,
        "route": st.one_of(st.sampled_from(["SIMPLE", "complex", "NOPE"]), json_values),
        "dry_run": st.one_of(st.booleans(), json_values),
    },
)

ALLOWED = {200, 400, 404, 413, 415}


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500 or response.json()["error"]["type"] == "upstream_error", response.text
    assert "Traceback" not in response.text
    if response.status_code == 200:
        if response.headers["content-type"].startswith("text/event-stream"):
            assert response.text.rstrip().endswith("data: [DONE]")
        return
    assert response.status_code in ALLOWED | {502}
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"] and error["type"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, path=st.sampled_from(["/v1/chat/completions", "/api/route"]))
def test_any_json_body_gets_a_clean_answer(router, body, path):
    response = httpx.post(f"{router.url}{path}", content=orjson.dumps(body),
                          headers={"content-type": "application/json"}, timeout=30)
    _check(response)


@settings(max_examples=40, deadline=None)
@given(raw=st.binary(max_size=200), path=st.sampled_from(["/v1/chat/completions", "/v1/completions", "/api/route",
                                                           "/v1/feedback", "/v1/embeddings"]))
def test_any_bytes_get_a_clean_answer(router, raw, path):
    response = httpx.post(f"{router.url}{path}", content=raw, headers={"content-type": "application/json"}, timeout=30)
    _check(response)


@settings(max_examples=40, deadline=None)
@given(body=st.dictionaries(st.sampled_from(["response_id", "score", "comment", "expected_route", "x"]),
                            json_values, max_size=5))
def test_any_feedback_body_gets_a_clean_answer(router, body):
    response = httpx.post(f"{router.v1}/feedback", json=body, timeout=30)
    _check(response)
    assert response.status_code != 200  # no such session ids exist
