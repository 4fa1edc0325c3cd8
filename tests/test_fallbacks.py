"""What happens when a backend is missing, fails, or answers nonsense."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import (
    CLASSIFIER_MODEL,
    PRIMARY_MODEL,
    sim_calls,
    sim_env,
    sim_fault,
    start_router,
    stop_router,
)

XAI_MODEL = "grok-4-1-fast-reasoning"


@pytest.mark.parametrize(("question", "label"), [
    ("Prove the Collatz conjecture for n below 2^60", "COMPLEX"),
    ("What are today's top news headlines?", "ENRICH"),
])
def test_no_xai_key_degrades_to_primary(router_without_xai, sim_reset, question, label):
    raw = router_without_xai.client().chat.completions.with_raw_response.create(
        model="ai-router", messages=[{"role": "user", "content": question}]
    )
    assert raw.headers["x-ai-router-route"] == label
    assert raw.headers["x-ai-router-backend"] == "primary"
    assert "no xAI key" in raw.headers["x-ai-router-reason"] or "no xai key" in raw.headers["x-ai-router-reason"]
    assert raw.parse().choices[0].message.content.startswith(f"[sim:{PRIMARY_MODEL}]")
    calls = sim_calls(sim_reset)
    assert not [c for c in calls if c["model"] == XAI_MODEL or c["path"].endswith("/responses")]


def test_no_xai_key_dry_run_says_so(router_without_xai, sim_reset):
    decision = httpx.post(
        f"{router_without_xai.url}/api/route",
        json={"dry_run": True, "messages": [{"role": "user", "content": "prove this theorem"}]},
    ).json()
    assert decision["route_label"] == "COMPLEX" and decision["backend"] == "primary"
    assert decision["degraded"]


@pytest.mark.parametrize("answer", ["I am not sure what you mean.", "", "BANANA"])
def test_classifier_garbage_falls_back_to_moderate(router, sim_reset, answer):
    httpx.post(f"{sim_reset.url}/sim/config", json={"classifier_answer": answer}).raise_for_status()
    decision = httpx.post(
        f"{router.url}/api/route", json={"dry_run": True, "messages": [{"role": "user", "content": "hello"}]}
    ).json()
    assert decision["route_label"] == "MODERATE"
    assert decision["route_reason"].startswith("fallback: classifier answer not a route")


@pytest.mark.parametrize(("answer", "label"), [
    ("**SIMPLE**", "SIMPLE"),
    ("Route: COMPLEX.", "COMPLEX"),
    ("The user wants current prices, which needs fresh data.\n\nENRICH", "ENRICH"),
    ("<think>maybe SIMPLE? no</think>MODERATE", "MODERATE"),
])
def test_messy_classifier_answers_are_understood(router, sim_reset, answer, label):
    httpx.post(f"{sim_reset.url}/sim/config", json={"classifier_answer": answer}).raise_for_status()
    decision = httpx.post(
        f"{router.url}/api/route", json={"dry_run": True, "messages": [{"role": "user", "content": "x"}]}
    ).json()
    assert decision["route_label"] == label
    assert decision["classification_raw"] == answer


def test_classifier_error_falls_back_to_moderate_and_still_answers(router, sim_reset):
    sim_fault(sim_reset, fault="500", model=CLASSIFIER_MODEL, count=-1)
    raw = router.client().chat.completions.with_raw_response.create(
        model="ai-router", messages=[{"role": "user", "content": "hello"}]
    )
    assert raw.headers["x-ai-router-route"] == "MODERATE"
    assert raw.headers["x-ai-router-reason"].startswith("fallback: classifier failed")
    assert raw.parse().choices[0].message.content


def test_classifier_timeout_falls_back_to_moderate(sim, tmp_path):
    httpx.post(f"{sim.url}/sim/reset").raise_for_status()
    server = start_router(sim_env(sim, CLASSIFIER_TIMEOUT_S="0.3"), tmp_path)
    try:
        sim_fault(sim, fault="hang", model=CLASSIFIER_MODEL)
        decision = httpx.post(
            f"{server.url}/api/route", json={"dry_run": True, "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        ).json()
        assert decision["route_label"] == "MODERATE"
        assert "timed out" in decision["route_reason"]
    finally:
        httpx.post(f"{sim.url}/sim/reset")
        stop_router(server)


@pytest.mark.parametrize("stream", [False, True])
def test_xai_failure_falls_back_to_primary(router, sim_reset, stream):
    sim_fault(sim_reset, fault="500", model=XAI_MODEL, count=-1)
    question = [{"role": "user", "content": "Prove the Riemann hypothesis"}]
    client = router.client()
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model="ai-router", messages=question, stream=True
        ) as response:
            headers = response.headers
            text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    else:
        raw = client.chat.completions.with_raw_response.create(model="ai-router", messages=question)
        headers, text = raw.headers, raw.parse().choices[0].message.content
    assert headers["x-ai-router-route"] == "COMPLEX"
    assert headers["x-ai-router-backend"] == "primary"
    assert "fell back to primary" in headers["x-ai-router-reason"]
    assert text.startswith(f"[sim:{PRIMARY_MODEL}]")


def test_failed_search_answers_without_context(router, sim_reset):
    sim_fault(sim_reset, fault="500", path="/v1/responses", count=-1)
    raw = router.client().chat.completions.with_raw_response.create(
        model="ai-router", messages=[{"role": "user", "content": "latest bitcoin price"}]
    )
    assert raw.headers["x-ai-router-route"] == "ENRICH"
    assert "search failed" in raw.headers["x-ai-router-reason"]
    primary = [c for c in sim_calls(sim_reset) if c["model"] == PRIMARY_MODEL][0]["body"]["messages"][0]
    assert "<search_results>" not in primary["content"]


def test_primary_failure_without_fallback_is_an_openai_error(router, sim_reset):
    sim_fault(sim_reset, fault="500", model=PRIMARY_MODEL, count=-1)
    response = httpx.post(
        f"{router.v1}/chat/completions", json={"messages": [{"role": "user", "content": "hello"}]}
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "upstream_error" and "primary" in error["message"]
    assert "Traceback" not in response.text


def test_stream_cut_midway_ends_with_inband_error(router, sim_reset):
    # Tokens spaced out, so the chunks before the cut reach the router before the hang-up.
    httpx.post(f"{sim_reset.url}/sim/config", json={"token_delay_ms": 20}).raise_for_status()
    sim_fault(sim_reset, fault="cut", model=PRIMARY_MODEL)
    with httpx.stream(
        "POST", f"{router.v1}/chat/completions",
        json={"stream": True, "messages": [{"role": "user", "content": "hello"}]},
    ) as response:
        assert response.status_code == 200
        body = response.read().decode()
    events = [e for e in body.split("\n\n") if e]
    assert '"error"' in events[-2] and events[-1] == "data: [DONE]"
