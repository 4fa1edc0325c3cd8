"""Every wait in the router is bounded, and no answer that keeps coming is ever cut (issue #20).

Non-streaming requests are streamed from the backend and assembled, so they get the same
first-token deadline as streams and the idle deadline between chunks (STREAM_IDLE_TIMEOUT_S).
The search (ENRICH_TIMEOUT_S) and the classifier (CLASSIFIER_TIMEOUT_S) keep their own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import PRIMARY_MODEL, Router, sim_calls, sim_env, sim_fault, start_router, stop_router

XAI_MODEL = "grok-4-1-fast-reasoning"


@pytest.fixture(scope="module")
def quick(sim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """Short deadlines: first token 0.5 s, 0.5 s of silence at most, a 1 s total that streams ignore."""
    server = start_router(sim_env(
        sim, PRIMARY_FIRST_TOKEN_TIMEOUT_S="0.5", XAI_FIRST_TOKEN_TIMEOUT_S="0.5", STREAM_IDLE_TIMEOUT_S="0.5",
        PRIMARY_TIMEOUT_S="1", XAI_TIMEOUT_S="1", RETRY_ATTEMPTS="0", ENRICH_TIMEOUT_S="0.5",
        CLASSIFIER_TIMEOUT_S="0.5",
    ), tmp_path_factory.mktemp("quick"))
    yield server
    stop_router(server)


def ask(router: Router, text: str, *, stream: bool = False, **extra) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(f"{router.v1}/chat/completions", timeout=60,
                          json={"messages": [{"role": "user", "content": text}], "stream": stream, **extra})
    return response, time.monotonic() - started


@pytest.mark.parametrize("fault", ["hang", "stall"])
def test_a_silent_backend_gives_a_clean_504_within_the_deadline(quick, sim_reset, fault):
    sim_fault(sim_reset, model=PRIMARY_MODEL, fault=fault, count=-1)
    response, took = ask(quick, "hello #route=SIMPLE")
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "timeout"
    assert took < 3, took  # 0.5 s of silence, not the 300 s the simulator would hang for


def test_a_stalled_backend_falls_back_to_the_declared_fallback(quick, sim_reset):
    sim_fault(sim_reset, model=XAI_MODEL, fault="stall", count=-1)
    response, took = ask(quick, "Prove the abc conjecture")
    assert response.status_code == 200 and response.headers["x-ai-router-route"] == "COMPLEX"
    assert response.headers["x-ai-router-backend"] == "primary" and took < 3
    assert "stalled" in response.headers["x-ai-router-reason"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_slow_but_steady_answer_is_never_cut(quick, sim_reset, stream):
    # 0.2 s between chunks: each gap under the 0.5 s idle deadline, the whole answer past the 1 s total.
    sim_fault(sim_reset, model=PRIMARY_MODEL, fault="slow_steady", delay_ms=200, count=-1)
    response, took = ask(quick, "hello #route=SIMPLE", stream=stream)
    assert response.status_code == 200 and took > 1.5
    if stream:
        assert response.text.rstrip().endswith("data: [DONE]") and '"error"' not in response.text
    else:
        body = response.json()
        assert body["choices"][0]["finish_reason"] == "stop" and body["choices"][0]["message"]["content"]


def test_non_streaming_answers_keep_usage_reasoning_and_tool_calls(quick, sim_reset):
    httpx.post(f"{sim_reset.url}/sim/config", json={"reasoning": True}).raise_for_status()
    response, _ = ask(quick, "hello #route=SIMPLE")
    body = response.json()
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] == "Let me think this through." and message["content"]
    assert body["usage"]["completion_tokens"] > 0 and body["object"] == "chat.completion"
    sent = [c for c in sim_calls(sim_reset) if c["model"] == PRIMARY_MODEL][-1]
    assert sent["stream"] is True  # streamed internally, for the deadlines
    assert sent["body"]["stream_options"] == {"include_usage": True}  # so the usage is not lost


def test_several_choices_are_not_streamed_but_still_bounded(quick, sim_reset):
    response, _ = ask(quick, "hello #route=SIMPLE", n=2)
    assert response.status_code == 200
    assert [c for c in sim_calls(sim_reset) if c["model"] == PRIMARY_MODEL][-1]["stream"] is False
    sim_fault(sim_reset, model=PRIMARY_MODEL, fault="hang", count=-1)
    response, took = ask(quick, "hello #route=SIMPLE", n=2)
    assert response.status_code == 504 and took < 3  # PRIMARY_TIMEOUT_S bounds it


def test_the_search_keeps_its_own_short_deadline(quick, sim_reset):
    sim_fault(sim_reset, path="/v1/responses", fault="hang", count=-1)
    response, took = ask(quick, "latest news about volcanoes")
    assert response.status_code == 200 and response.headers["x-ai-router-route"] == "ENRICH"
    assert "search failed" in response.headers["x-ai-router-reason"] and took < 2.5


def test_the_classifier_keeps_its_own_short_deadline(quick, sim_reset):
    sim_fault(sim_reset, model="sim-classifier", fault="hang", count=-1)
    response, took = ask(quick, "hello")
    assert response.status_code == 200 and response.headers["x-ai-router-route"] == "MODERATE"
    assert took < 2.5


def test_a_role_only_chunk_does_not_start_the_idle_clock():
    from core.backends.client import _carries_output

    role = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    assert not _carries_output(role)  # a model that thinks silently after it is still under the first-token deadline
    assert _carries_output({"choices": [{"delta": {"content": "Hi"}}]})
    assert _carries_output({"choices": [{"delta": {"reasoning_content": "Let"}}]})
    assert _carries_output({"choices": [{"delta": {"tool_calls": [{"index": 0}]}}]})
    assert _carries_output({"choices": [{"delta": {}, "finish_reason": "stop"}]})
    assert _carries_output({"choices": [], "usage": {"total_tokens": 3}})
    assert _carries_output({"choices": [{"text": "legacy completion"}]})


@pytest.fixture(scope="module")
def retrying(sim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """Retries as shipped (RETRY_ATTEMPTS=2), short first-token deadlines, the classifier as the primary's fallback."""
    server = start_router(sim_env(
        sim, PRIMARY_FIRST_TOKEN_TIMEOUT_S="0.6", CLASSIFIER_TIMEOUT_S="0.6", STREAM_IDLE_TIMEOUT_S="0.6",
        PRIMARY_FALLBACK="classifier",
    ), tmp_path_factory.mktemp("retrying"))
    yield server
    stop_router(server)


def _calls(sim, model: str) -> int:
    return len([c for c in sim_calls(sim) if c["model"] == model])


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_hung_backend_is_not_asked_again(retrying, sim_reset, stream):
    """Issue #23: a hung primary held a client 3 x its first-token deadline (361 s with the defaults)."""
    sim_fault(sim_reset, model=PRIMARY_MODEL, fault="hang", count=-1)
    response, took = ask(retrying, "hello #route=SIMPLE", stream=stream)
    assert response.status_code == 200, response.text
    assert response.headers["x-ai-router-backend"] == "classifier"  # failed over at once
    assert _calls(sim_reset, PRIMARY_MODEL) == 1  # asked once, not RETRY_ATTEMPTS more times
    assert took < 0.6 + 1.0, took  # its first-token deadline plus the fallback's (quick) answer


def test_a_hung_primary_and_a_hung_fallback_cost_one_deadline_each(retrying, sim_reset):
    sim_fault(sim_reset, model=PRIMARY_MODEL, fault="hang", count=-1)
    sim_fault(sim_reset, model="sim-classifier", fault="hang", count=-1)
    response, took = ask(retrying, "hello")  # the classification hangs too: MODERATE after 0.6 s
    assert response.status_code == 504 and response.json()["error"]["code"] == "timeout", response.text
    assert _calls(sim_reset, PRIMARY_MODEL) == 1
    assert _calls(sim_reset, "sim-classifier") == 2  # the classification, then the fallback's answer, once
    assert took < 3 * 0.6 + 1.0, took  # classification + primary + fallback deadlines, no retries


def test_transient_faults_are_still_retried(retrying, sim_reset):
    sim_fault(sim_reset, model=PRIMARY_MODEL, fault="500", count=2)
    response, _ = ask(retrying, "hello #route=SIMPLE")
    assert response.status_code == 200 and response.headers["x-ai-router-backend"] == "primary"
    assert _calls(sim_reset, PRIMARY_MODEL) == 3
