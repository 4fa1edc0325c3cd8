"""Soak: 500 requests at concurrency 50 while the backends flap. Bounded in time, loopback only."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest

from tests.conftest import CLASSIFIER_MODEL, PRIMARY_MODEL, sim_env, start_router, stop_router

REQUESTS = 500
CONCURRENCY = 50
QUESTIONS = ["hello", "Write a sort function in Go", "Prove there is no largest prime",
             "What is the latest news on the stock market?", "Explain the CAP theorem"]
# Failures that the router must absorb: retried, fallen back, or answered without search.
FLAPS = [
    {"fault": "500", "model": "grok-4-1-fast-reasoning", "count": 3},
    {"fault": "hang", "model": "grok-4-1-fast-reasoning", "count": 1},
    {"fault": "500", "model": CLASSIFIER_MODEL, "count": 2},
    {"fault": "garbage", "model": CLASSIFIER_MODEL, "count": 1},
    {"fault": "500", "path": "/v1/responses", "count": 2},
    {"fault": "500", "model": PRIMARY_MODEL, "count": 1},
    {"fault": "reset", "model": PRIMARY_MODEL, "count": 1},
    {"fault": "garbage", "model": PRIMARY_MODEL, "count": 1},
]


@pytest.fixture()
def soak_router(sim, tmp_path):
    httpx.post(f"{sim.url}/sim/reset").raise_for_status()
    httpx.post(f"{sim.url}/sim/config", json={"token_delay_ms": 2, "tokens": 12}).raise_for_status()
    server = start_router(sim_env(
        sim, BREAKER_FAILURES="5", BREAKER_COOLDOWN_S="0.3", XAI_TIMEOUT_S="0.5", XAI_FIRST_TOKEN_TIMEOUT_S="0.5",
        CLASSIFIER_TIMEOUT_S="1", PRIMARY_FALLBACK="classifier", LOG_LEVEL="WARNING",
    ), tmp_path)
    yield server, sim
    stop_router(server)
    httpx.post(f"{sim.url}/sim/reset")


async def _soak(router_url: str, sim_url: str) -> dict:
    rng = random.Random(7)
    outcomes: dict[str, int] = {}
    unexpected: list[str] = []
    stop = asyncio.Event()

    async def flap(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            pending = (await client.get(f"{sim_url}/sim/faults")).json()
            pending_primary = [f for f in pending if f.get("model") == PRIMARY_MODEL]
            fault = rng.choice(FLAPS)
            if fault.get("model") != PRIMARY_MODEL or not pending_primary:  # one primary fault at a time
                await client.post(f"{sim_url}/sim/faults", json=fault)
            try:
                await asyncio.wait_for(stop.wait(), 0.03)
            except TimeoutError:
                pass

    async def one(client: httpx.AsyncClient, index: int, slots: asyncio.Semaphore) -> None:
        body = {"messages": [{"role": "user", "content": f"{rng.choice(QUESTIONS)} (soak {index})"}],
                "stream": index % 2 == 0}
        hang_up = index % 10 == 4 and body["stream"]
        async with slots:
            try:
                async with client.stream("POST", f"{router_url}/v1/chat/completions", json=body) as response:
                    if hang_up:
                        async for _ in response.aiter_lines():
                            break  # the client leaves after the first line
                        outcomes["hung_up"] = outcomes.get("hung_up", 0) + 1
                        return
                    text = (await response.aread()).decode()
            except httpx.TimeoutException:
                unexpected.append(f"request {index} hung")
                return
        key = str(response.status_code)
        outcomes[key] = outcomes.get(key, 0) + 1
        if response.status_code != 200:
            unexpected.append(f"request {index}: {response.status_code} {text[:200]}")
        elif body["stream"] and ('"error"' in text or not text.rstrip().endswith("[DONE]")):
            unexpected.append(f"request {index}: broken stream {text[-200:]}")

    slots = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY + 10)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        flapper = asyncio.create_task(flap(client))
        started = time.monotonic()
        await asyncio.gather(*(one(client, i, slots) for i in range(REQUESTS)))
        elapsed = time.monotonic() - started
        stop.set()
        await flapper
    return {"outcomes": outcomes, "unexpected": unexpected, "elapsed_s": round(elapsed, 1)}


def test_soak_with_flapping_backends(soak_router):
    router, sim = soak_router
    report = asyncio.run(_soak(router.url, sim.url))
    stats = httpx.get(f"{router.url}/stats").json()
    print(f"\nsoak: {REQUESTS} requests, concurrency {CONCURRENCY}, {report['elapsed_s']} s, "
          f"outcomes {report['outcomes']}, fallbacks {stats['fallbacks']}, "
          f"breakers { {n: b['breaker']['times_opened'] for n, b in stats['backends'].items()} }")
    assert report["unexpected"] == []
    assert sum(report["outcomes"].values()) == REQUESTS
    httpx.post(f"{sim.url}/sim/reset").raise_for_status()  # release any request still hanging upstream
    deadline = time.monotonic() + 15
    while (open_streams := httpx.get(f"{sim.url}/sim/stats").json()["open_streams"]) != 0:
        assert time.monotonic() < deadline, f"{open_streams} upstream streams leaked"
        time.sleep(0.05)
    while len(list(router.session_dir.glob("*.json"))) < REQUESTS:  # one record per request, written async
        assert time.monotonic() < deadline, f"{len(list(router.session_dir.glob('*.json')))} records"
        time.sleep(0.05)
    assert len(list(router.session_dir.glob("*.json"))) == REQUESTS


def test_the_soak_counts_admissions_certainly_inside_a_window_and_names_the_one_that_broke():
    from scripts.soak import max_admitted_per_window, rate_limit_windows

    # An exact limiter, 3 per 10 s: admitted at 0.0 s and again from 10.01 s, answers up to 0.5 s late.
    exact = [(0.0, 0.5, 200, 0), (0.0, 0.1, 200, 1), (0.01, 0.1, 200, 0), (0.3, 0.35, 429, 1),
             (10.01, 10.05, 200, 1), (10.02, 10.1, 200, 0), (10.03, 10.1, 200, 1)]
    assert max_admitted_per_window(exact, 10, []) == 6  # by answer time (the old check): blames the limiter
    figures = rate_limit_windows(exact, 10, [], 3, origin=0.0)
    assert figures["max_admitted"] == 3 and figures["windows_over_the_limit"] == 0

    broken = [*exact, (5.0, 5.1, 200, 0)]  # one admission too many, certainly inside 0.01-10.01
    figures = rate_limit_windows(broken, 10, [], 3, origin=0.0)
    assert figures["max_admitted"] == 4 and figures["windows_over_the_limit"] >= 1
    first = figures["first_windows_over_the_limit"][0]
    assert (first["from_s"], first["to_s"], first["admitted"]) == (0.0, 10.0, 4)
    assert first["by_replica"] == {"0": 3, "1": 1}
    # A window overlapping a period some router worked without Redis is not checked.
    assert rate_limit_windows(broken, 10, [(4.0, 6.0)], 3, origin=0.0)["windows_over_the_limit"] == 0
