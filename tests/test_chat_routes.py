"""Every route, streaming and not, through the official `openai` client against a running router."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import CLASSIFIER_MODEL, PRIMARY_MODEL, sim_calls, sim_fault

TITLE_TASK = (
    "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n"
    "### Guidelines:\n- The title should clearly represent the main theme or subject of the conversation.\n"
    "### Output:\nJSON format: { \"title\": \"your concise title here\" }\n"
    "### Chat History:\n<chat_history>\nUSER: How do I bake sourdough bread?\nASSISTANT: \n</chat_history>"
)

# (question, expected route label, backend path header, model that must answer)
CASES = [
    ("hello", "SIMPLE", "primary", PRIMARY_MODEL),
    ("Write a Python function that reverses a linked list #route=MODERATE", "MODERATE", "primary", PRIMARY_MODEL),
    ("Prove that there are infinitely many primes of the form 4k+3", "COMPLEX", "xai", "grok-4-1-fast-reasoning"),
    ("What is the latest news about the Mars sample return?", "ENRICH", "primary", PRIMARY_MODEL),
    (TITLE_TASK, "META", "primary", PRIMARY_MODEL),
]


def _chat_calls(sim) -> list[dict]:
    return [c for c in sim_calls(sim) if c["path"].endswith("/chat/completions")]


@pytest.mark.parametrize(("question", "label", "path", "model"), CASES, ids=[c[1] for c in CASES])
def test_non_streaming_route(router, sim_reset, question, label, path, model):
    raw = router.client().chat.completions.with_raw_response.create(
        model="ai-router", messages=[{"role": "user", "content": question}], temperature=0.3, top_p=0.9
    )
    completion = raw.parse()
    assert raw.headers["x-ai-router-route"] == label
    assert raw.headers["x-ai-router-backend"] == path
    assert raw.headers["x-ai-router-model"] == model
    assert raw.headers["x-session-id"] == completion.id and completion.id.startswith("chatcmpl-")
    assert completion.model == "ai-router"  # the body keeps the virtual model
    assert completion.choices[0].message.content.startswith(f"[sim:{model}]")
    generation = [c for c in _chat_calls(sim_reset) if c["model"] != CLASSIFIER_MODEL]
    assert len(generation) == 1
    sent = generation[0]["body"]
    assert sent["temperature"] == 0.3 and sent["top_p"] == 0.9  # client parameters pass through
    assert sent["messages"][0]["role"] == "system"
    classifier_calls = [c for c in _chat_calls(sim_reset) if c["model"] == CLASSIFIER_MODEL]
    assert len(classifier_calls) == (0 if label == "META" else 1)


@pytest.mark.parametrize(("question", "label", "path", "model"), CASES, ids=[c[1] for c in CASES])
def test_streaming_route(router, sim_reset, question, label, path, model):
    with router.client().chat.completions.with_streaming_response.create(
        model="ai-router", messages=[{"role": "user", "content": question}], stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-ai-router-route"] == label
        assert response.headers["x-ai-router-backend"] == path
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith(f"[sim:{model}]")
    assert all(c.model == "ai-router" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_stream_without_include_usage_has_no_usage_chunk(router, sim_reset):
    stream = router.client().chat.completions.create(
        model="ai-router", messages=[{"role": "user", "content": "hello"}], stream=True
    )
    chunks = list(stream)
    assert chunks and all(c.choices for c in chunks)  # the router asked for usage; the client did not


def test_stream_is_framed_like_vllm_and_keeps_reasoning(router, sim_reset):
    httpx.post(f"{sim_reset.url}/sim/config", json={"reasoning": True}).raise_for_status()
    with httpx.stream(
        "POST", f"{router.v1}/chat/completions",
        json={"model": "ai-router", "stream": True, "messages": [{"role": "user", "content": "hello"}]},
    ) as response:
        body = response.read().decode()
    events = body.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events[:-1])
    assert '"reasoning_content"' in body  # vLLM's reasoning deltas pass through


def test_primary_system_prompt_carries_date_and_merges_client_system(router, sim_reset):
    router.client().chat.completions.create(
        model="ai-router",
        messages=[{"role": "system", "content": "Always answer in French."}, {"role": "user", "content": "hello"}],
    )
    sent = [c for c in _chat_calls(sim_reset) if c["model"] == PRIMARY_MODEL][0]["body"]["messages"]
    assert [m["role"] for m in sent] == ["system", "user"]
    assert "Current date and time:" in sent[0]["content"]
    assert sent[0]["content"].endswith("Always answer in French.")


def test_enrich_injects_search_context_into_primary(router, sim_reset):
    router.client().chat.completions.create(
        model="ai-router", messages=[{"role": "user", "content": "What is the weather in Paris today?"}]
    )
    calls = sim_calls(sim_reset)
    search = [c for c in calls if c["path"].endswith("/responses")]
    assert len(search) == 1
    assert [t["type"] for t in search[0]["body"]["tools"]] == ["web_search", "x_search"]
    assert search[0]["has_auth"]
    primary = [c for c in calls if c["model"] == PRIMARY_MODEL][0]["body"]["messages"][0]["content"]
    assert "<search_results>" in primary and "https://example.com/a" in primary


def test_complex_floors_max_tokens_for_xai(router, sim_reset):
    router.client().chat.completions.create(
        model="ai-router", max_tokens=50,
        messages=[{"role": "user", "content": "Prove the conjecture about twin primes"}],
    )
    xai = [c for c in _chat_calls(sim_reset) if c["model"] == "grok-4-1-fast-reasoning"][0]["body"]
    assert xai["max_tokens"] == 16384


def test_models_lists_the_virtual_model_and_its_aliases(router):
    assert [m.id for m in router.client().models.list()] == ["ai-router", "ai-router-local", "ai-router-cloud"]


def test_dry_run_returns_decision_without_generating(router, sim_reset):
    body = {"dry_run": True, "messages": [{"role": "user", "content": "Prove Fermat's little theorem"}]}
    decision = httpx.post(f"{router.url}/api/route", json=body).json()
    assert decision["dry_run"] is True
    assert decision["route"] == decision["route_label"] == "COMPLEX" and decision["backend"] == "xai"
    assert decision["route_reason"] == "classifier"
    assert decision["classification_raw"] == "COMPLEX"
    assert decision["classification_ms"] > 0
    assert [c["model"] for c in sim_calls(sim_reset)] == [CLASSIFIER_MODEL]  # no generation


def test_forced_route_skips_classifier(router, sim_reset):
    response = httpx.post(
        f"{router.url}/api/route",
        json={"route": "complex", "messages": [{"role": "user", "content": "hello"}]},
    )
    assert response.status_code == 200
    assert response.headers["x-ai-router-route"] == "COMPLEX"
    assert response.headers["x-ai-router-reason"] == "forced"
    assert [c["model"] for c in sim_calls(sim_reset)] == ["grok-4-1-fast-reasoning"]


def test_forced_unknown_route_is_a_clear_400(router):
    response = httpx.post(
        f"{router.url}/api/route", json={"route": "TURBO", "messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 400
    assert "Expected one of" in response.json()["error"]["message"]


def test_stats_count_routes(router, sim_reset):
    before = httpx.get(f"{router.url}/stats").json()
    router.client().chat.completions.create(model="ai-router", messages=[{"role": "user", "content": "hello"}])
    after = httpx.get(f"{router.url}/stats").json()
    assert after["requests"] == before["requests"] + 1
    assert after["routes"]["SIMPLE"]["count"] == before.get("routes", {}).get("SIMPLE", {}).get("count", 0) + 1
    assert after["routes"]["SIMPLE"]["latency_ms"]["p50"] > 0


def test_stats_count_client_errors_apart_from_route_errors(router, sim_reset):
    """Issue #23: a 400 before any routing is the client's fault, not an `errors` of UNROUTED."""
    before = httpx.get(f"{router.url}/stats").json()
    unrouted = before["routes"].get("UNROUTED", {})
    assert httpx.post(f"{router.v1}/chat/completions", json={"messages": "not a list"}).status_code == 400
    assert httpx.post(f"{router.v1}/chat/completions", content=b"{not json").status_code == 400
    sim_fault(sim_reset, model=PRIMARY_MODEL, fault="500", count=3)  # the first try and both retries
    failed = httpx.post(f"{router.v1}/chat/completions",
                        json={"messages": [{"role": "user", "content": "hello #route=SIMPLE"}]})
    assert failed.status_code == 502
    after = httpx.get(f"{router.url}/stats").json()
    assert after["client_errors"] == before["client_errors"] + 2
    assert after["errors"] == before["errors"] + 1  # only the backend's failure
    assert after["routes"]["UNROUTED"]["client_errors"] == unrouted.get("client_errors", 0) + 2
    assert after["routes"]["UNROUTED"]["errors"] == unrouted.get("errors", 0)
    assert after["routes"]["SIMPLE"]["errors"] == before["routes"].get("SIMPLE", {}).get("errors", 0) + 1
    metrics = httpx.get(f"{router.url}/metrics").text
    assert 'ai_router_requests_total{error="client",route="UNROUTED",streamed="false"}' in metrics


def test_health_reports_each_backend(router):
    health = httpx.get(f"{router.url}/health").json()
    assert health["status"] == "ok"
    assert set(health["backends"]) == {"primary", "classifier", "xai"}


def test_legacy_completions(router, sim_reset):
    completion = router.client().completions.create(model="ai-router", prompt="def fib(n):", max_tokens=5)
    assert completion.model == "ai-router"
    assert completion.choices[0].text
    assert sim_calls(sim_reset)[0]["path"].endswith("/completions")
