"""Client keys, the admin key and rate limits, answered in OpenAI's error shape."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import TEST_XAI_KEY, sim_env, start_router, stop_router

CLIENT_KEYS = ("client-key-one-123456", "client-key-two-654321")
ADMIN_KEY = "admin-key-abcdef-987654"


@pytest.fixture(scope="module")
def locked_router(sim, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("locked")
    server = start_router(sim_env(sim, ROUTER_API_KEYS=",".join(CLIENT_KEYS), ADMIN_API_KEY=ADMIN_KEY), tmp)
    yield server
    stop_router(server)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


CHAT = {"messages": [{"role": "user", "content": "hello"}]}


def test_missing_or_unknown_key_is_401_in_openai_shape(locked_router):
    with pytest.raises(openai.AuthenticationError) as caught:
        locked_router.client(api_key="not-a-configured-key").chat.completions.create(
            model="ai-router", messages=CHAT["messages"])
    assert caught.value.status_code == 401
    response = httpx.post(f"{locked_router.v1}/chat/completions", json=CHAT)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_wrong_key_is_401_and_never_echoed(locked_router):
    response = httpx.post(f"{locked_router.v1}/chat/completions", json=CHAT, headers=_auth("sk-wrong-guess-000000"))
    assert response.status_code == 401 and "sk-wrong-guess-000000" not in response.text


@pytest.mark.parametrize("key", CLIENT_KEYS)
def test_each_client_key_works(locked_router, sim_reset, key):
    reply = locked_router.client(api_key=key).chat.completions.create(model="ai-router", messages=CHAT["messages"])
    assert reply.choices[0].message.content
    assert [m.id for m in locked_router.client(api_key=key).models.list()][0] == "ai-router"


def test_x_api_key_is_a_key_like_bearer_and_is_checked_the_same(locked_router, sim_reset):
    # Anthropic's clients send `x-api-key`; one parser reads it for every check (keys, admin, usage).
    ok = httpx.post(f"{locked_router.v1}/chat/completions", json=CHAT, headers={"x-api-key": CLIENT_KEYS[0]})
    assert ok.status_code == 200, ok.text
    wrong = httpx.post(f"{locked_router.v1}/chat/completions", json=CHAT, headers={"x-api-key": "sk-guess-0000"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
    operator = httpx.get(f"{locked_router.url}/stats", headers={"x-api-key": CLIENT_KEYS[0]})
    assert operator.status_code == 403
    stats = httpx.get(f"{locked_router.url}/stats", headers={"x-api-key": ADMIN_KEY})
    assert stats.status_code == 200


def test_health_needs_no_key(locked_router):
    assert httpx.get(f"{locked_router.url}/health").status_code == 200


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/route"), ("GET", "/stats"), ("POST", "/graph/invoke"), ("GET", "/metrics"),
])
def test_operator_endpoints_need_the_admin_key(locked_router, sim_reset, method, path):
    body = {"input": CHAT} if path.startswith("/graph") else {**CHAT, "dry_run": True}
    kwargs = {"json": body} if method == "POST" else {}
    assert httpx.request(method, f"{locked_router.url}{path}", **kwargs).status_code == 401
    forbidden = httpx.request(method, f"{locked_router.url}{path}", headers=_auth(CLIENT_KEYS[0]), **kwargs)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["type"] == "permission_error"
    allowed = httpx.request(method, f"{locked_router.url}{path}", headers=_auth(ADMIN_KEY), timeout=30, **kwargs)
    assert allowed.status_code == 200


def test_admin_key_also_works_on_v1(locked_router, sim_reset):
    assert httpx.post(f"{locked_router.v1}/chat/completions", json=CHAT, headers=_auth(ADMIN_KEY)).status_code == 200


def test_rate_limit_is_429_with_retry_after_per_key(sim, tmp_path):
    server = start_router(sim_env(sim, ROUTER_API_KEYS=",".join(CLIENT_KEYS), RATE_LIMIT_PER_MINUTE="6",
                                  RATE_LIMIT_BURST="3"), tmp_path)
    try:
        statuses = [httpx.get(f"{server.v1}/models", headers=_auth(CLIENT_KEYS[0])).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
        limited = httpx.get(f"{server.v1}/models", headers=_auth(CLIENT_KEYS[0]))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"]["type"] == "rate_limit_error"
        assert httpx.get(f"{server.v1}/models", headers=_auth(CLIENT_KEYS[1])).status_code == 200  # own bucket
        with pytest.raises(openai.RateLimitError):
            server.client(api_key=CLIENT_KEYS[0]).models.list()
    finally:
        stop_router(server)


def test_rate_limit_by_address_when_keys_are_off(sim, tmp_path):
    server = start_router(sim_env(sim, RATE_LIMIT_PER_MINUTE="6", RATE_LIMIT_BURST="2"), tmp_path)
    try:
        statuses = [httpx.get(f"{server.v1}/models").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        # A made-up bearer token each time is not a new client: no key is configured, the address counts.
        forged = [httpx.get(f"{server.v1}/models", headers=_auth(f"made-up-{i}")).status_code for i in range(3)]
        assert forged == [429, 429, 429]
    finally:
        stop_router(server)


def test_startup_says_it_is_loopback_only_without_keys(router):
    assert "serve on loopback (127.0.0.1) only" in router.log()
    assert TEST_XAI_KEY not in router.log()
