"""Tokens and money, usage per key, per-key budgets, and model names (issue #19).

Spend and savings are checked against figures computed by hand from the calls the simulator
received: the simulator counts prompt tokens as the words of the messages sent to it and
answers `SimConfig.tokens` (12) completion tokens, so every price below can be redone on paper.
"""

from __future__ import annotations

import hashlib

import httpx
import openai
import pytest

from core.usage.ledger import Price, parse_prices, request_usage, step_tokens
from tests import redis_server as redis_helper
from tests.conftest import sim_calls, sim_env, start_router, stop_router, wait_for_record

redis_server = redis_helper.redis_server

PRICES = "xai=2/10,primary=0.5/1"  # USD per million tokens, in/out
ANSWER_TOKENS = 12  # SimConfig.tokens


def _words(messages: list[dict]) -> int:
    def text(content) -> str:
        if isinstance(content, list):
            return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        return content or ""
    return sum(len(text(m.get("content")).split()) for m in messages)


def _key(token: str) -> str:
    return "key-" + hashlib.sha256(token.encode()).hexdigest()[:8]


@pytest.fixture()
def priced_router(sim, tmp_path):
    server = start_router(sim_env(sim, USAGE_PRICES=PRICES, ROUTER_API_KEYS="k-alice,k-bob",
                                  ADMIN_API_KEY="k-admin"), tmp_path)
    yield server
    stop_router(server)


def test_parse_prices_and_estimates():
    assert parse_prices("xai=0.20/0.50, vision=1/2") == {"xai": Price(0.2, 0.5), "vision": Price(1, 2)}
    with pytest.raises(ValueError):
        parse_prices("xai=cheap")
    # A backend that sent no usage: about 4 characters a token, marked estimated.
    step = {"node": "generate", "provider": "xai", "status": "ok", "usage": None,
            "messages_sent": [{"role": "user", "content": "x" * 40}], "response_content": "y" * 8,
            "reasoning_content": None}
    assert step_tokens(step) == (10, 2, True)
    usage = request_usage([step], {"xai": Price(1_000_000, 1_000_000)})
    assert usage.estimated and usage.cost_usd == 12 and usage.xai_cost_usd == 12 and usage.all_xai_cost_usd == 12
    # The Responses API's names (ENRICH's search) are read too; failed calls with no usage cost nothing.
    assert step_tokens({"usage": {"input_tokens": 5, "output_tokens": 7}}) == (5, 7, False)
    assert step_tokens({"status": "error", "usage": None}) is None


def test_spend_and_savings_match_hand_computed_figures(priced_router, sim_reset):
    alice = priced_router.client(api_key="k-alice")
    bob = priced_router.client(api_key="k-bob")
    cloud = alice.chat.completions.create(model="ai-router-cloud", messages=[{"role": "user", "content": "hi there"}])
    local = bob.chat.completions.create(model="ai-router-local",
                                        messages=[{"role": "user", "content": "explain a b c d"}])
    # Streamed without include_usage: the router still asks the backend for usage and counts it.
    chunks = list(bob.chat.completions.create(model="ai-router-local", stream=True,
                                              messages=[{"role": "user", "content": "one two"}]))
    assert all(c.usage is None for c in chunks)  # the client did not ask for the usage chunk

    calls = [c for c in sim_calls(sim_reset) if c["path"].endswith("/chat/completions")]
    assert len(calls) == 3  # aliases force the route: no classifier call
    xai_prompt = sum(_words(c["body"]["messages"]) for c in calls if c["model"] == "grok-4-1-fast-reasoning")
    primary_prompt = sum(_words(c["body"]["messages"]) for c in calls if c["model"] != "grok-4-1-fast-reasoning")
    xai_cost = (xai_prompt * 2 + ANSWER_TOKENS * 10) / 1e6
    primary_cost = (primary_prompt * 0.5 + 2 * ANSWER_TOKENS * 1) / 1e6
    all_xai = ((xai_prompt + primary_prompt) * 2 + 3 * ANSWER_TOKENS * 10) / 1e6

    stats = httpx.get(f"{priced_router.url}/stats", headers={"Authorization": "Bearer k-admin"}).json()["usage"]
    cost = stats["cost"]
    assert cost["xai_usd"] == pytest.approx(xai_cost, abs=1e-8)
    assert cost["spend_usd"] == pytest.approx(xai_cost + primary_cost, abs=1e-8)
    assert cost["all_xai_usd"] == pytest.approx(all_xai, abs=1e-8)
    assert cost["saved_usd"] == pytest.approx(all_xai - xai_cost - primary_cost, abs=1e-8)
    (day,) = cost["per_day"].values()
    assert day["saved_usd"] == cost["saved_usd"] and day["xai_usd"] == cost["xai_usd"]
    tokens = stats["tokens"]
    assert tokens["by_backend"]["xai"] == {"prompt": xai_prompt, "completion": ANSWER_TOKENS}
    assert tokens["by_backend"]["primary"] == {"prompt": primary_prompt, "completion": 2 * ANSWER_TOKENS}
    assert tokens["by_route"]["COMPLEX"]["completion"] == ANSWER_TOKENS and tokens["estimated"] == 0
    clients = stats["clients"]
    assert clients[_key("k-alice")]["requests"] == 1 and clients[_key("k-bob")]["requests"] == 2
    assert clients[_key("k-alice")]["spend_usd"] == pytest.approx(xai_cost, abs=1e-8)
    assert clients[_key("k-bob")]["completion_tokens"] == 2 * ANSWER_TOKENS
    assert clients[_key("k-bob")]["last_seen"]

    metrics = httpx.get(f"{priced_router.url}/metrics", headers={"Authorization": "Bearer k-admin"}).text
    assert f'ai_router_tokens_total{{backend="xai",client="{_key("k-alice")}"' in metrics
    assert "ai_router_all_xai_usd_total" in metrics and 'ai_router_spend_usd_total{backend="xai"' in metrics

    record = wait_for_record(priced_router, cloud.id)
    assert record["usage"]["xai_cost_usd"] == pytest.approx(xai_cost, abs=1e-8)
    assert record["client"]["key"] == _key("k-alice") and record["usage"]["estimated"] is False
    assert wait_for_record(priced_router, local.id)["route_label"] == "MODERATE"
    streamed = wait_for_record(priced_router, chunks[0].id)
    assert streamed["usage"]["completion_tokens"] == ANSWER_TOKENS and streamed["overhead_ms"] is not None


def test_rate_limit_rejections_are_counted_per_key(sim, tmp_path):
    server = start_router(sim_env(sim, ROUTER_API_KEYS="k-alice", ADMIN_API_KEY="k-admin",
                                  RATE_LIMIT_PER_MINUTE="1", RATE_LIMIT_BURST="1"), tmp_path)
    try:
        client = server.client(api_key="k-alice")
        client.chat.completions.create(model="ai-router", messages=[{"role": "user", "content": "hello"}])
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="ai-router", messages=[{"role": "user", "content": "hello"}])
        stats = httpx.get(f"{server.url}/stats", headers={"Authorization": "Bearer k-admin"}).json()
        entry = stats["usage"]["clients"][_key("k-alice")]
        assert entry["requests"] == 1 and entry["rate_limited"] == 1
    finally:
        stop_router(server)


def _ask(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="ai-router", messages=[{"role": "user", "content": "hello"}])


def test_request_budget_admits_exactly_its_allowance(sim, tmp_path):
    server = start_router(sim_env(sim, ROUTER_API_KEYS="k-alice,k-bob", ADMIN_API_KEY="k-admin",
                                  KEY_BUDGET_REQUESTS_PER_DAY="3"), tmp_path)
    try:
        alice = server.client(api_key="k-alice")
        for _ in range(3):
            _ask(alice)
        with pytest.raises(openai.RateLimitError) as refused:
            _ask(alice)
        assert refused.value.code == "budget_exceeded" and "KEY_BUDGET_REQUESTS_PER_DAY" in refused.value.message
        assert int(refused.value.response.headers["retry-after"]) > 0
        _ask(server.client(api_key="k-bob"))  # budgets are per key
        stats = httpx.get(f"{server.url}/stats", headers={"Authorization": "Bearer k-admin"}).json()
        assert stats["usage"]["clients"][_key("k-alice")]["budget_refused"] == 1
        assert stats["usage"]["clients"][_key("k-alice")]["requests"] == 3
    finally:
        stop_router(server)


def test_token_budget_refuses_once_used_up(sim, tmp_path):
    server = start_router(sim_env(sim, ROUTER_API_KEYS="k-alice", KEY_BUDGET_TOKENS_PER_DAY="1"), tmp_path)
    try:
        alice = server.client(api_key="k-alice")
        _ask(alice)  # admitted: nothing used yet; it uses more than the budget
        with pytest.raises(openai.RateLimitError) as refused:
            _ask(alice)
        assert refused.value.code == "budget_exceeded" and "KEY_BUDGET_TOKENS_PER_DAY" in refused.value.message
    finally:
        stop_router(server)


def test_request_budget_is_shared_across_routers_through_redis(sim, tmp_path, redis_server):
    env = sim_env(sim, ROUTER_API_KEYS="k-alice", KEY_BUDGET_REQUESTS_PER_DAY="3", REDIS_URL=redis_server.url)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = start_router(env, tmp_path / "a")
    second = start_router(env, tmp_path / "b")
    try:
        _ask(first.client(api_key="k-alice"))
        _ask(second.client(api_key="k-alice"))
        _ask(first.client(api_key="k-alice"))
        for router in (first, second):
            with pytest.raises(openai.RateLimitError):
                _ask(router.client(api_key="k-alice"))
    finally:
        stop_router(first)
        stop_router(second)


def test_strict_model_policy_rejects_unknown_models(sim, tmp_path):
    server = start_router(sim_env(sim, MODEL_POLICY="strict"), tmp_path)
    try:
        client = server.client()
        with pytest.raises(openai.NotFoundError) as refused:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
        assert refused.value.code == "model_not_found"
        with pytest.raises(openai.NotFoundError):
            client.completions.create(model="gpt-3.5-turbo-instruct", prompt="def f(")
        assert client.chat.completions.create(model="ai-router", messages=[{"role": "user", "content": "hello"}])
        assert client.chat.completions.create(model="ai-router-local",
                                              messages=[{"role": "user", "content": "hello"}])
    finally:
        stop_router(server)


def test_models_list_aliases_that_force_their_route(router, sim_reset):
    client = router.client()
    assert [m.id for m in client.models.list()][:3] == ["ai-router", "ai-router-local", "ai-router-cloud"]
    raw = client.chat.completions.with_raw_response.create(model="ai-router-cloud",
                                                           messages=[{"role": "user", "content": "hello"}])
    assert raw.headers["x-ai-router-route"] == "COMPLEX" and raw.headers["x-ai-router-backend"] == "xai"
    raw = client.chat.completions.with_raw_response.create(
        model="ai-router-local", messages=[{"role": "user", "content": "Prove that sqrt(2) is irrational"}])
    assert raw.headers["x-ai-router-route"] == "MODERATE" and raw.headers["x-ai-router-backend"] == "primary"
    # MODEL_POLICY=route (the default): an unknown name is routed as the virtual model.
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Prove that sqrt(2) is irrational"}])
    assert raw.headers["x-ai-router-route"] == "COMPLEX"


def test_eval_report_shows_spend_and_savings(tmp_path):
    from evals.spend import spend_markdown, spend_section

    results = [
        {"steps": [{"node": "classify", "provider": "classifier", "status": "ok",
                    "usage": {"prompt_tokens": 100, "completion_tokens": 1}},
                   {"node": "generate", "provider": "xai", "status": "ok",
                    "usage": {"prompt_tokens": 1000, "completion_tokens": 500}}]},
        {"steps": [{"node": "generate", "provider": "primary", "status": "ok",
                    "usage": {"prompt_tokens": 2000, "completion_tokens": 1000}}]},
        {"steps": []},  # a routing-only replay generates nothing
    ]
    spend = spend_section(results, {"xai": Price(2, 10)})
    assert spend["xai_usd"] == spend["spend_usd"] == pytest.approx((1000 * 2 + 500 * 10) / 1e6)  # 0.007
    assert spend["all_xai_usd"] == pytest.approx(0.007 + (2000 * 2 + 1000 * 10) / 1e6)  # + 0.014
    assert spend["saved_usd"] == pytest.approx(0.014) and spend["prompt_tokens"] == 3100
    assert "saved $0.014000" in "\n".join(spend_markdown(spend))
