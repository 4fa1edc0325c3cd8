"""Backends fail, clients misbehave: the router retries, falls back, or fails cleanly, and records it."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import openai
import pytest

from tests.conftest import (
    CLASSIFIER_MODEL,
    PRIMARY_MODEL,
    sim_calls,
    sim_env,
    sim_fault,
    start_router,
    stop_router,
    wait_for_record,
)

XAI_MODEL = "grok-4-1-fast-reasoning"


def _chat(router, content: str, **extra) -> httpx.Response:
    return httpx.post(f"{router.v1}/chat/completions",
                      json={"messages": [{"role": "user", "content": content}], **extra}, timeout=30)


def _records_for(router, text: str) -> list[dict]:
    found = []
    for path in router.session_dir.glob("*.json"):
        record = json.loads(path.read_text())
        if record.get("user_query") == text:
            found.append(record)
    return found


@pytest.fixture(scope="module")
def strict_router(sim, tmp_path_factory):
    """Short timeouts so hangs resolve fast; the primary falls back to nothing."""
    tmp = tmp_path_factory.mktemp("strict")
    server = start_router(sim_env(
        sim, PRIMARY_TIMEOUT_S="1.5", PRIMARY_FIRST_TOKEN_TIMEOUT_S="0.4", XAI_TIMEOUT_S="1",
        XAI_FIRST_TOKEN_TIMEOUT_S="0.4", RETRY_AFTER_MAX_S="2", CLASSIFIER_TIMEOUT_S="0.5",
    ), tmp)
    yield server
    stop_router(server)


# (fault on the primary, stream?, expected status, primary calls the simulator saw)
TRANSIENT = [
    ({"fault": "500"}, False, 200, 2),
    ({"fault": "500"}, True, 200, 2),
    ({"fault": "429", "retry_after": 0}, False, 200, 2),
    ({"fault": "garbage"}, False, 200, 2),
    ({"fault": "garbage"}, True, 200, 2),
    ({"fault": "reset"}, False, 200, 2),
    ({"fault": "reset"}, True, 200, 2),
    ({"fault": "cut"}, False, 200, 2),
    # A first-token deadline spent is not a transient fault: never asked again (issue #23).
    ({"fault": "slow_first_token", "delay_ms": 1500}, True, 504, 1),
    ({"fault": "slow_first_token", "delay_ms": 1500}, False, 504, 1),
    ({"fault": "400"}, False, 400, 1),
    ({"fault": "429", "retry_after": 60}, False, 429, 1),
    ({"fault": "hang", "count": -1}, False, 504, 1),
    ({"fault": "hang", "count": -1}, True, 504, 1),
    ({"fault": "500", "count": -1}, True, 502, 3),
]


@pytest.mark.parametrize(("fault", "stream", "status", "calls"), TRANSIENT,
                         ids=[f"{f['fault']}-{'stream' if s else 'plain'}-{st}" for f, s, st, _ in TRANSIENT])
def test_primary_faults_are_retried_or_reported_cleanly(strict_router, sim_reset, fault, stream, status, calls):
    question = f"hello there #route=SIMPLE {json.dumps(fault)} {stream}"
    sim_fault(sim_reset, model=PRIMARY_MODEL, **fault)
    response = _chat(strict_router, question, stream=stream)
    body = response.read().decode()
    assert response.status_code == status, body
    if status == 200:
        if stream:
            assert body.rstrip().endswith("data: [DONE]") and '"error"' not in body
        else:
            assert response.json()["choices"][0]["message"]["content"].startswith(f"[sim:{PRIMARY_MODEL}]")
    else:
        error = response.json()["error"]
        assert error["message"] and error["type"] and "Traceback" not in body
        if status == 429:
            assert response.headers.get("retry-after")
    primary_calls = [c for c in sim_calls(sim_reset) if c["model"] == PRIMARY_MODEL]
    if calls is not None:
        assert len(primary_calls) == calls
    record = wait_for_record(strict_router, response.headers["x-session-id"])
    assert record["status_code"] == status
    assert (record["error"] is None) is (status == 200)
    assert len(_records_for(strict_router, question)) == 1


@pytest.mark.parametrize("fault", ["500", "hang", "garbage", "reset", "429"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_xai_faults_fall_back_to_primary(strict_router, sim_reset, fault, stream):
    sim_fault(sim_reset, model=XAI_MODEL, fault=fault, count=-1, retry_after=60)
    question = f"Prove the abc conjecture ({fault} {stream})"
    response = _chat(strict_router, question, stream=stream)
    assert response.status_code == 200
    assert response.headers["x-ai-router-route"] == "COMPLEX"
    assert response.headers["x-ai-router-backend"] == "primary"
    assert "xai failed" in response.headers["x-ai-router-reason"]
    record = wait_for_record(strict_router, response.headers["x-session-id"])
    assert [s["provider"] for s in record["steps"]][-2:] == ["xai", "primary"]
    assert record["steps"][-2]["status"] == "error" and record["error"] is None


@pytest.mark.parametrize("fault", ["500", "hang", "garbage"])
def test_classifier_faults_fall_back_to_moderate(strict_router, sim_reset, fault):
    sim_fault(sim_reset, model=CLASSIFIER_MODEL, fault=fault, count=-1)
    response = _chat(strict_router, f"hello ({fault})")
    assert response.status_code == 200
    assert response.headers["x-ai-router-route"] == "MODERATE"
    assert response.headers["x-ai-router-reason"].startswith("fallback: classifier")
    wait_for_record(strict_router, response.headers["x-session-id"])
    assert len(_records_for(strict_router, f"hello ({fault})")) == 1


@pytest.mark.parametrize("fault", ["500", "hang", "garbage"])
def test_search_faults_answer_without_context(strict_router, sim_reset, fault):
    sim_fault(sim_reset, path="/v1/responses", fault=fault, count=-1)
    response = _chat(strict_router, f"latest news about volcanoes ({fault})")
    assert response.status_code == 200
    assert response.headers["x-ai-router-route"] == "ENRICH"
    assert "search failed" in response.headers["x-ai-router-reason"]


def test_primary_down_falls_back_to_configured_backend(sim, tmp_path):
    httpx.post(f"{sim.url}/sim/reset").raise_for_status()
    server = start_router(sim_env(sim, PRIMARY_FALLBACK="classifier"), tmp_path)
    try:
        sim_fault(sim, model=PRIMARY_MODEL, fault="500", count=-1)
        response = _chat(server, "hello #route=SIMPLE")
        assert response.status_code == 200
        assert response.headers["x-ai-router-model"] == CLASSIFIER_MODEL
        assert "fell back to classifier" in response.headers["x-ai-router-reason"]
        answered = [c for c in sim_calls(sim) if c["model"] == CLASSIFIER_MODEL][-1]["body"]["messages"]
        assert "Current date and time" in answered[0]["content"]  # the generation, not a classification
    finally:
        httpx.post(f"{sim.url}/sim/reset")
        stop_router(server)


def test_circuit_breaker_skips_a_failing_backend_then_probes_it(sim, tmp_path):
    httpx.post(f"{sim.url}/sim/reset").raise_for_status()
    server = start_router(sim_env(sim, BREAKER_FAILURES="2", BREAKER_COOLDOWN_S="1", RETRY_ATTEMPTS="0"), tmp_path)
    try:
        sim_fault(sim, model=XAI_MODEL, fault="500", count=-1)
        for _ in range(2):
            assert _chat(server, "Prove the twin prime conjecture").status_code == 200  # fell back
        stats = httpx.get(f"{server.url}/stats").json()
        assert stats["backends"]["xai"]["breaker"]["state"] == "open"
        assert httpx.get(f"{server.url}/health").json()["backends"]["xai"]["breaker"]["state"] == "open"
        xai_calls = len([c for c in sim_calls(sim) if c["model"] == XAI_MODEL])
        response = _chat(server, "Prove the twin prime conjecture")
        assert response.status_code == 200 and "circuit open" in response.headers["x-ai-router-reason"]
        assert len([c for c in sim_calls(sim) if c["model"] == XAI_MODEL]) == xai_calls  # skipped, not called
        httpx.post(f"{sim.url}/sim/reset").raise_for_status()  # xAI recovers
        deadline = time.monotonic() + 5
        while httpx.get(f"{server.url}/stats").json()["backends"]["xai"]["breaker"]["state"] == "open":
            assert time.monotonic() < deadline, "breaker never half-opened"
            time.sleep(0.05)
        probe = _chat(server, "Prove the twin prime conjecture")
        assert probe.headers["x-ai-router-backend"] == "xai"
        assert httpx.get(f"{server.url}/stats").json()["backends"]["xai"]["breaker"]["state"] == "closed"
    finally:
        httpx.post(f"{sim.url}/sim/reset")
        stop_router(server)


def test_saturated_backend_answers_503_with_retry_after(sim, tmp_path):
    httpx.post(f"{sim.url}/sim/reset").raise_for_status()
    server = start_router(sim_env(sim, PRIMARY_MAX_CONCURRENCY="1", QUEUE_TIMEOUT_S="0.2"), tmp_path)
    try:
        sim_fault(sim, model=PRIMARY_MODEL, fault="slow_first_token", delay_ms=1500)
        slow = threading.Thread(target=_chat, args=(server, "hello #route=SIMPLE slow"))
        slow.start()
        deadline = time.monotonic() + 5
        while httpx.get(f"{server.url}/stats").json()["backends"]["primary"]["in_flight"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        response = _chat(server, "hello #route=SIMPLE second")
        assert response.status_code == 503
        assert response.headers["retry-after"] and "saturated" in response.json()["error"]["message"]
        slow.join(10)
    finally:
        httpx.post(f"{sim.url}/sim/reset")
        stop_router(server)


def test_client_disconnect_cancels_upstream_stream(router, sim_reset):
    httpx.post(f"{sim_reset.url}/sim/config", json={"token_delay_ms": 50, "tokens": 200}).raise_for_status()
    with httpx.stream("POST", f"{router.v1}/chat/completions",
                      json={"stream": True, "messages": [{"role": "user", "content": "hello"}]}) as response:
        lines = response.iter_lines()  # keep the iterator: dropping it would close the connection
        next(lines)
        opened = httpx.get(f"{sim_reset.url}/sim/stats").json()
        assert opened["open_streams"] == 1 and opened["cancelled_streams"] == 0, opened
    deadline = time.monotonic() + 5
    while (stats := httpx.get(f"{sim_reset.url}/sim/stats").json())["open_streams"]:
        assert time.monotonic() < deadline, "upstream stream left running after the client left"
        time.sleep(0.02)
    assert stats["cancelled_streams"] >= 1


def test_client_disconnect_cancels_non_streaming_call(router, sim_reset):
    sim_fault(sim_reset, model=PRIMARY_MODEL, fault="hang")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{router.v1}/chat/completions", timeout=0.5,
                                   json={"messages": [{"role": "user", "content": "hello hang-up"}]})
    deadline = time.monotonic() + 10
    while not (found := _records_for(router, "hello hang-up")):
        assert time.monotonic() < deadline, "no record for the abandoned request"
        time.sleep(0.05)
    assert found[0]["status_code"] == 499 and "disconnected" in found[0]["error"]


def test_openai_client_sees_clean_errors(strict_router, sim_reset):
    sim_fault(sim_reset, model=PRIMARY_MODEL, fault="500", count=-1)
    with pytest.raises(openai.APIStatusError) as caught:
        strict_router.client().chat.completions.create(
            model="ai-router", messages=[{"role": "user", "content": "hello #route=SIMPLE"}])
    assert caught.value.status_code == 502 and "primary answered HTTP 500" in caught.value.message


def test_graceful_shutdown_finishes_in_flight_stream(sim, tmp_path):
    httpx.post(f"{sim.url}/sim/reset").raise_for_status()
    httpx.post(f"{sim.url}/sim/config", json={"token_delay_ms": 30, "tokens": 30}).raise_for_status()
    server = start_router(sim_env(sim), tmp_path)
    try:
        with httpx.stream("POST", f"{server.v1}/chat/completions",
                          json={"stream": True, "messages": [{"role": "user", "content": "hello drain"}]}) as response:
            lines = response.iter_lines()
            next(lines)
            server.process.send_signal(signal.SIGTERM)
            rest = list(lines)
        assert "data: [DONE]" in rest
        server.process.wait(timeout=20)
        records = _records_for(server, "hello drain")
        assert len(records) == 1 and records[0]["error"] is None  # flushed before exit
    finally:
        httpx.post(f"{sim.url}/sim/reset")
        if server.process.poll() is None:
            stop_router(server)
