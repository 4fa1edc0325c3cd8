"""Embeddings, the routing-decision cache, the response cache, and which model really answered."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest

from tests.conftest import (
    CLASSIFIER_MODEL,
    PRIMARY_MODEL,
    sim_calls,
    sim_env,
    start_router,
    stop_router,
    wait_for_record,
)


@pytest.fixture(scope="module")
def router_cached(sim, tmp_path_factory):
    """Decision cache on (the default size), response cache on, an embeddings backend."""
    tmp = tmp_path_factory.mktemp("cached")
    env = sim_env(sim, RESPONSE_CACHE="on", EMBEDDINGS_BASE_URL=f"{sim.url}/v1", EMBEDDINGS_MODEL="sim-embed")
    del env["ROUTE_CACHE_SIZE"]  # the default: on
    server = start_router(env, tmp)
    yield server
    stop_router(server)


def _generations(sim) -> list[dict]:
    return [
        c
        for c in sim_calls(sim)
        if c["path"].endswith("/chat/completions") and c["model"] != CLASSIFIER_MODEL
    ]


def _classifications(sim) -> list[dict]:
    return [c for c in sim_calls(sim) if c["model"] == CLASSIFIER_MODEL]


def _unique(text: str) -> str:
    return f"{text} ({uuid.uuid4().hex[:8]})"  # the module's router keeps its caches between tests


# --- embeddings -------------------------------------------------------------------------


def test_embeddings_are_forwarded(router_cached, sim_reset):
    client = router_cached.client()
    raw = client.embeddings.with_raw_response.create(model="sim-embed", input=["first text", "second text"])
    result = raw.parse()
    assert [d.index for d in result.data] == [0, 1] and len(result.data[0].embedding) == 8
    assert result.model == "sim-embed" and raw.headers["x-ai-router-model"] == "sim-embed"
    direct = httpx.post(
        f"{sim_reset.url}/v1/embeddings", json={"model": "sim-embed", "input": ["first text"]}
    ).json()
    # the backend's vectors, unchanged (the client asked for base64, i.e. float32)
    assert result.data[0].embedding == pytest.approx(direct["data"][0]["embedding"], abs=1e-6)
    calls = [c for c in sim_calls(sim_reset) if c["path"] == "/v1/embeddings"]
    assert calls[0]["body"] == {
        "model": "sim-embed",
        "input": ["first text", "second text"],
        "encoding_format": "base64",
    }
    assert "sim-embed" in [m.id for m in client.models.list()]
    record = wait_for_record(router_cached, raw.headers["x-session-id"])
    assert record["endpoint"] == "embeddings" and record["served_model"] == "sim-embed"
    assert record["steps"][0]["usage"]["prompt_tokens"] == 4


def test_embeddings_bad_input_is_400(router_cached, sim_reset):
    response = httpx.post(f"{router_cached.v1}/embeddings", json={"model": "sim-embed", "input": []})
    assert response.status_code == 400 and response.json()["error"]["param"] == "input"
    assert not sim_calls(sim_reset)


def test_embeddings_refused_when_not_configured(router, sim_reset):
    with pytest.raises(openai.NotFoundError) as caught:
        router.client().embeddings.create(model="anything", input="hello")
    assert caught.value.body["code"] == "embeddings_not_configured"
    assert "EMBEDDINGS_BASE_URL" in caught.value.body["message"]
    assert [m.id for m in router.client().models.list()] == ["ai-router", "ai-router-local", "ai-router-cloud"]
    assert not sim_calls(sim_reset)


# --- the routing-decision cache ---------------------------------------------------------------


def test_decision_cache_answers_a_repeat_without_the_classifier(router_cached, sim_reset):
    client = router_cached.client()
    messages = [{"role": "user", "content": _unique("Prove the theorem about primes")}]
    before = httpx.get(f"{router_cached.url}/stats").json()["caches"]["route_decisions"]
    first = client.chat.completions.with_raw_response.create(model="ai-router", messages=messages)
    again = client.chat.completions.with_raw_response.create(
        model="ai-router", messages=messages, stream=True
    )
    again.parse().close()
    assert first.headers["x-ai-router-reason"] == "classifier"
    assert again.headers["x-ai-router-route"] == "COMPLEX"
    assert again.headers["x-ai-router-reason"] == "classifier (cached)"
    assert len(_classifications(sim_reset)) == 1  # the simulator proves the second call never happened
    assert len(_generations(sim_reset)) == 2
    after = httpx.get(f"{router_cached.url}/stats").json()["caches"]["route_decisions"]
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"] + 1
    dry = httpx.post(f"{router_cached.url}/api/route", json={"dry_run": True, "messages": messages}).json()
    assert dry["route_reason"] == "classifier (cached)" and dry["classification_raw"] == "COMPLEX"


def test_decision_cache_keys_on_the_classified_text(router_cached, sim_reset):
    client = router_cached.client()
    ask = _unique("Explain list comprehensions")
    client.chat.completions.create(model="ai-router", messages=[{"role": "user", "content": ask}])
    # Same last message, other history: the classifier sees other text, so it is asked again.
    client.chat.completions.create(
        model="ai-router",
        messages=[
            {"role": "user", "content": "I write Python."},
            {"role": "assistant", "content": "Nice."},
            {"role": "user", "content": ask},
        ],
    )
    assert len(_classifications(sim_reset)) == 2


def test_classifier_failures_are_not_cached(router_cached, sim_reset):
    messages = [{"role": "user", "content": _unique("Prove it")}]
    httpx.post(f"{sim_reset.url}/sim/config", json={"classifier_answer": "BANANA"}).raise_for_status()
    decision = httpx.post(
        f"{router_cached.url}/api/route", json={"dry_run": True, "messages": messages}
    ).json()
    assert decision["route_reason"].startswith("fallback")
    httpx.post(f"{sim_reset.url}/sim/config", json={"classifier_answer": None}).raise_for_status()
    decision = httpx.post(
        f"{router_cached.url}/api/route", json={"dry_run": True, "messages": messages}
    ).json()
    assert decision["route_label"] == "COMPLEX" and decision["route_reason"] == "classifier"


# --- the response cache ---------------------------------------------------------------------


def test_response_cache_serves_a_deterministic_repeat(router_cached, sim_reset):
    client = router_cached.client(api_key="client-key-A")
    messages = [{"role": "user", "content": _unique("Write a haiku about caching")}]
    first = client.chat.completions.with_raw_response.create(
        model="ai-router", messages=messages, temperature=0
    )
    second = client.chat.completions.with_raw_response.create(
        model="ai-router", messages=messages, temperature=0
    )
    assert "x-ai-router-cache" not in first.headers and second.headers["x-ai-router-cache"] == "hit"
    one, two = first.parse(), second.parse()
    assert two.choices[0].message.content == one.choices[0].message.content
    assert two.id != one.id and two.model == "ai-router"  # a new session id, the virtual model
    assert second.headers["x-ai-router-route"] == first.headers["x-ai-router-route"]
    assert second.headers["x-ai-router-model"] == PRIMARY_MODEL
    assert second.headers["x-ai-router-reason"].startswith("response cache hit")
    assert len(_generations(sim_reset)) == 1
    record = wait_for_record(router_cached, two.id)
    assert record["route_reason"].startswith("response cache hit") and record["steps"] == []

    # Streamed from the cache as chunks, with usage when asked for.
    with client.chat.completions.with_streaming_response.create(
        model="ai-router",
        messages=messages,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-ai-router-cache"] == "hit"
        chunks = list(response.parse())
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == one.choices[0].message.content
    )
    assert chunks[-1].usage.completion_tokens == one.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert len(_generations(sim_reset)) == 1

    # Another client key never sees these answers.
    other = router_cached.client(api_key="client-key-B").chat.completions.with_raw_response.create(
        model="ai-router", messages=messages, temperature=0
    )
    assert "x-ai-router-cache" not in other.headers
    assert len(_generations(sim_reset)) == 2
    stats = httpx.get(f"{router_cached.url}/stats").json()["caches"]["responses"]
    assert stats["enabled"] and stats["hits"] >= 2 and stats["bytes"] > 0


def test_response_cache_stores_a_streamed_answer_with_its_tool_calls(router_cached, sim_reset):
    client = router_cached.client()
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    messages = [{"role": "user", "content": _unique("please lookup the docs")}]
    live = list(
        client.chat.completions.create(model="ai-router", messages=messages, tools=tools, seed=7, stream=True)
    )
    cached = client.chat.completions.with_raw_response.create(
        model="ai-router", messages=messages, tools=tools, seed=7
    )
    assert cached.headers["x-ai-router-cache"] == "hit"
    call = cached.parse().choices[0].message.tool_calls[0]
    streamed_args = "".join(
        t.function.arguments or "" for c in live if c.choices for t in c.choices[0].delta.tool_calls or ()
    )
    assert call.function.name == "lookup" and call.function.arguments == streamed_args
    assert cached.parse().choices[0].finish_reason == "tool_calls"
    assert len(_generations(sim_reset)) == 1


@pytest.mark.parametrize("params", [{}, {"temperature": 0.7}], ids=["default-temperature", "sampling"])
def test_response_cache_skips_non_deterministic_requests(router_cached, sim_reset, params):
    client = router_cached.client()
    messages = [{"role": "user", "content": _unique("Write a limerick")}]
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="ai-router", messages=messages, **params)
        assert "x-ai-router-cache" not in raw.headers
    assert len(_generations(sim_reset)) == 2


def test_response_cache_is_off_by_default(router, sim_reset):
    messages = [{"role": "user", "content": "Write a haiku about defaults"}]
    for _ in range(2):
        raw = router.client().chat.completions.with_raw_response.create(
            model="ai-router", messages=messages, temperature=0
        )
        assert "x-ai-router-cache" not in raw.headers
    assert len(_generations(sim_reset)) == 2
    assert httpx.get(f"{router.url}/stats").json()["caches"]["responses"] == {"enabled": False}


def test_answers_built_on_a_live_search_are_not_cached(router_cached, sim_reset):
    messages = [{"role": "user", "content": _unique("What is the latest news today?")}]
    for _ in range(2):
        raw = router_cached.client().chat.completions.with_raw_response.create(
            model="ai-router", messages=messages, temperature=0
        )
        assert raw.headers["x-ai-router-path"] == "enrich" and "x-ai-router-cache" not in raw.headers
    assert len([c for c in sim_calls(sim_reset) if c["path"].endswith("/responses")]) == 2


# --- which model answered ------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_model_substitution_is_named_logged_and_counted(router, sim_reset, stream):
    httpx.post(
        f"{sim_reset.url}/sim/config", json={"model_name_override": "grok-9-expensive"}
    ).raise_for_status()
    before = httpx.get(f"{router.url}/stats").json()["model_mismatches"]
    with router.client().chat.completions.with_streaming_response.create(
        model="ai-router",
        messages=[{"role": "user", "content": "Prove the twin prime conjecture"}],
        stream=stream,
    ) as response:
        assert response.headers["x-ai-router-model"] == "grok-9-expensive"
        body = response.read().decode()
    assert '"model":"ai-router"' in body.replace(" ", "")  # clients keep seeing the virtual model
    after = httpx.get(f"{router.url}/stats").json()["model_mismatches"]
    assert after == before + 2  # the classifier and xAI both answered under another name
    assert "configured as 'grok-4-1-fast-reasoning' but answered as 'grok-9-expensive'" in router.log()
