"""LOCAL_CLASSIFIER=auto over real HTTP: the local model earns each route on the traffic it sees.

The simulator plays the LLM classifier with a known answer per prompt (its `classifier_script`,
a scripted teacher). The prompts are regression-set requests the shipped local model predicts
confidently and rightly (backend level), so a good teacher agrees with it; a contrarian teacher
answers another backend for every one. The bar is lowered for speed (0.85 over 20 samples: a
route then needs 22 agreeing samples, four rounds of the prompts) where that does not change what is tested; the Wilson
math at the real defaults (0.97 over 200) is unit-tested in tests/test_agreement.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from core.routes import classifiable_labels
from core.routing.agreement import serving
from core.routing.local_decision import assess
from core.routing.local_model import LocalModel
from tests.conftest import CLASSIFIER_MODEL, ROOT, Router, sim_calls, sim_env, start_router, stop_router
from tests.redis_server import RedisServer

MODEL_PATH = ROOT / "models" / "router_classifier" / "model.json"
DATASET = ROOT / "evals" / "datasets" / "routing_regression.jsonl"
PER_ROUTE = 6
BAR = {"LOCAL_CLASSIFIER_AUTO_MIN_AGREEMENT": "0.85", "LOCAL_CLASSIFIER_AUTO_MIN_SAMPLES": "20",
       "LOCAL_CLASSIFIER_AUTO_WINDOW": "200", "LOCAL_CLASSIFIER_AUTO_REFRESH_S": "0.1"}
CONTRARY = {"SIMPLE": "COMPLEX", "MODERATE": "ENRICH", "COMPLEX": "SIMPLE", "ENRICH": "MODERATE"}
"""A contrarian teacher's answer: always another backend (and the costly direction for the primary's routes)."""


@pytest.fixture(scope="module")
def prompts() -> dict[str, str]:
    """Prompt -> the route the good teacher answers (the local model confidently predicts exactly it)."""
    model = LocalModel.load(MODEL_PATH)
    chosen: dict[str, str] = {}
    per_route: dict[str, int] = {}
    for line in DATASET.read_text().splitlines():
        row = json.loads(line)
        messages, gold = row["inputs"]["messages"], row["outputs"]["route"]
        if len(messages) != 1 or gold == "META" or len(messages[0]["content"]) > 400:
            continue
        local = assess(model, messages, classifiable_labels(), None)
        if local["confident"] and local["label"] == gold and per_route.get(gold, 0) < PER_ROUTE:
            per_route[gold] = per_route.get(gold, 0) + 1
            chosen[messages[0]["content"].strip()] = gold
    assert set(per_route) == {"SIMPLE", "MODERATE", "COMPLEX", "ENRICH"}, per_route
    return chosen


def teach(sim, script: dict[str, str]) -> None:
    httpx.post(f"{sim.url}/sim/config", json={"classifier_script": script}).raise_for_status()


def chat(router: Router, text: str) -> httpx.Response:
    response = httpx.post(f"{router.v1}/chat/completions", timeout=30, json={
        "model": "ai-router", "messages": [{"role": "user", "content": text}]})
    assert response.status_code == 200, response.text
    return response


def decided_locally(response: httpx.Response) -> bool:
    return "auto: promoted" in response.headers["x-ai-router-reason"]


def agreement(router: Router) -> dict:
    stats = httpx.get(f"{router.url}/stats", timeout=10).json()
    return stats["local_classifier"]["agreement"]


def send_round(router: Router, prompts: dict[str, str]) -> list[tuple[str, httpx.Response]]:
    return [(text, chat(router, text)) for text in prompts]


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture()
def auto_router(sim_reset, tmp_path: Path) -> Iterator[Router]:
    router = start_router(sim_env(sim_reset, LOCAL_CLASSIFIER="auto", LOCAL_CLASSIFIER_AUTO_AUDIT="0.25", **BAR),
                          tmp_path)
    yield router
    stop_router(router)


def test_a_good_teacher_earns_the_local_model_a_growing_share_at_the_bar(auto_router, sim_reset, prompts):
    teach(sim_reset, prompts)
    shares, local_decisions = [], []
    for _ in range(5):
        answers = send_round(auto_router, prompts)
        shares.append(sum(decided_locally(r) for _, r in answers) / len(answers))
        local_decisions += [(text, r.headers["x-ai-router-route"]) for text, r in answers if decided_locally(r)]
    # Nothing is decided locally before the routes have earned it; then a growing share is.
    assert shares[0] == 0.0
    assert shares[-1] >= 0.9 and shares == sorted(shares), shares
    # The local decisions agree with the teacher at the bar or better (backend level).
    agree = sum(serving(route) == serving(prompts[text]) for text, route in local_decisions)
    assert agree / len(local_decisions) >= 0.85
    # Calls saved: fewer classifier calls than requests (the audits among them), and /stats says so.
    requests = 5 * len(prompts)
    calls = [c for c in sim_calls(sim_reset) if c.get("model") == CLASSIFIER_MODEL]
    assert len(calls) < requests - len(local_decisions) / 2
    routes = agreement(auto_router)["routes"]
    for route in ("SIMPLE", "MODERATE", "COMPLEX", "ENRICH"):
        figures = routes[route]
        assert figures["promoted"] and figures["promoted_since"] and figures["wilson_lower"] >= 0.85, (route, figures)
        assert figures["samples"] >= 20 and figures["agreement"] == 1.0
    assert sum(f["llm_calls_saved"] for f in routes.values()) == len(local_decisions)
    assert sum(f["audits"] for f in routes.values()) > 0  # a share of local decisions still asked the LLM
    metrics = httpx.get(f"{auto_router.url}/metrics", timeout=10).text
    assert 'ai_router_local_classifier_promoted{route="SIMPLE"} 1' in metrics
    assert "ai_router_local_classifier_llm_calls_saved_total" in metrics
    # The review desk's overview shows the same per-route figures (no admin key: loopback, as /stats).
    page = httpx.get(f"{auto_router.url}/review", timeout=10)
    assert page.status_code == 200
    table = page.text.split('id="local-agreement"', 1)[1].split("</table>", 1)[0]
    for route in ("SIMPLE", "MODERATE", "COMPLEX", "ENRICH"):
        row = table.split(f'<th scope="row">{route}</th>', 1)[1].split("</tr>", 1)[0]
        assert "since " in row and str(routes[route]["llm_calls_saved"]) in row, (route, row)


def test_a_contrarian_teacher_never_promotes(auto_router, sim_reset, prompts):
    teach(sim_reset, {text: CONTRARY[route] for text, route in prompts.items()})
    for _ in range(5):
        assert not any(decided_locally(r) for _, r in send_round(auto_router, prompts))
    routes = agreement(auto_router)["routes"]
    assert all(not f["promoted"] and f["agreement"] == 0.0 for f in routes.values())
    assert sum(f["samples"] for f in routes.values()) == 5 * len(prompts)


def test_a_teacher_that_changes_its_answers_demotes_the_promoted_routes(auto_router, sim_reset, prompts):
    teach(sim_reset, prompts)
    for _ in range(4):
        send_round(auto_router, prompts)
    assert all(f["promoted"] for f in agreement(auto_router)["routes"].values())
    teach(sim_reset, {text: CONTRARY[route] for text, route in prompts.items()})
    # Only the audits (a quarter of local decisions) see the new answers: each miss takes a route's bound down.
    for _ in range(12):
        send_round(auto_router, prompts)
        if not any(f["promoted"] for f in agreement(auto_router)["routes"].values()):
            break
    routes = agreement(auto_router)["routes"]
    assert not any(f["promoted"] for f in routes.values()), routes
    assert all(f["promoted_since"] is None and f["wilson_lower"] < 0.85 for f in routes.values())
    answers = send_round(auto_router, prompts)  # back to the LLM classifier for every request
    assert not any(decided_locally(r) for _, r in answers)
    assert all(r.headers["x-ai-router-reason"] == "classifier" for _, r in answers)


def test_a_persons_label_counts_instead_of_the_llms_answer(sim_reset, tmp_path, prompts):
    labels = tmp_path / "labels.json"
    router = start_router(sim_env(sim_reset, LOCAL_CLASSIFIER="auto", EVAL_LABELS_FILE=str(labels), **BAR), tmp_path)
    try:
        teach(sim_reset, prompts)
        simple = [text for text, route in prompts.items() if route == "SIMPLE"][:2]
        sessions = [chat(router, text).headers["x-session-id"] for text in simple]
        wait_for(lambda: agreement(router)["routes"].get("SIMPLE", {}).get("agreeing") == 2)
        # Feedback with an expected route (POST /v1/feedback)...
        feedback = httpx.post(f"{router.v1}/feedback", timeout=10, json={
            "response_id": sessions[0], "score": 0, "expected_route": "COMPLEX"})
        assert feedback.status_code == 200, feedback.text
        figures = agreement(router)["routes"]["SIMPLE"]
        assert figures["agreeing"] == 1 and figures["costly_misses"] == 1
        # ...and the labels file `python -m evals.label set` writes, read when it changes.
        labels.write_text(json.dumps({sessions[1]: {"expected_route": "ENRICH", "rating": 1}}))
        wait_for(lambda: agreement(router)["routes"]["SIMPLE"]["agreeing"] == 0)
        assert agreement(router)["routes"]["SIMPLE"]["costly_misses"] == 2 and agreement(router)["labels"] == 2
    finally:
        stop_router(router)


def test_the_statistics_survive_a_restart(sim_reset, tmp_path, prompts):
    env = sim_env(sim_reset, LOCAL_CLASSIFIER="auto", **BAR)
    teach(sim_reset, prompts)
    router = start_router(env, tmp_path)
    try:
        for _ in range(4):
            send_round(router, prompts)
        before = agreement(router)
    finally:
        stop_router(router)
    assert (tmp_path / "sessions" / "state" / "local_classifier_agreement.json").is_file()
    router = start_router(env, tmp_path)  # the same session folder: the same state file
    try:
        after = agreement(router)
        assert after["routes"] == before["routes"]
        assert all(f["promoted"] for f in after["routes"].values())
        assert all(decided_locally(r) for _, r in send_round(router, prompts)[:4])
    finally:
        stop_router(router)


@pytest.fixture()
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(workdir=tmp_path_factory.mktemp("redis")).start()
    yield server
    server.close()


def test_two_routers_on_one_redis_share_the_statistics(sim_reset, tmp_path, prompts, redis):
    env = sim_env(sim_reset, LOCAL_CLASSIFIER="auto", REDIS_URL=redis.url, LOCAL_CLASSIFIER_AUTO_AUDIT="0", **BAR)
    teach(sim_reset, prompts)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with ThreadPoolExecutor(2) as pool:  # started side by side: each start is a few seconds
        first, second = pool.map(lambda name: start_router(env, tmp_path / name), ("a", "b"))
    try:
        for _ in range(4):  # only the first router serves traffic
            send_round(first, prompts)
        wait_for(lambda: all(f["promoted"] for f in agreement(first)["routes"].values()))
        # The second one sees the fleet's samples and promotions, and decides locally without having measured.
        wait_for(lambda: agreement(second)["routes"] == agreement(first)["routes"])
        shared = agreement(second)
        assert shared["shared"] is True
        assert all(f["promoted"] and f["samples"] >= 20 for f in shared["routes"].values())
        answers = send_round(second, prompts)
        assert all(decided_locally(r) for _, r in answers)
        saved = len(answers)
        wait_for(lambda: sum(f["llm_calls_saved"] for f in agreement(first)["routes"].values()) >= saved)
    finally:
        stop_router(first)
        stop_router(second)
