"""The local route classifier: the shipped model, the cascade over real HTTP, shadow mode, training."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from evals import train
from core.routing.local_model import LocalModel, features
from core.routes import ROUTES, RouteSpec
from nodes.fast_classify import fast_classify
from tests.conftest import (
    CLASSIFIER_MODEL,
    ROOT,
    sim_calls,
    sim_env,
    start_router,
    stop_router,
    wait_for_record,
)

MODEL_PATH = ROOT / "models" / "router_classifier" / "model.json"
FIXTURE = ROOT / "tests" / "fixtures" / "router_train" / "small.jsonl"
CONFIDENT = "hi"
CONFIDENT_ROUTE = "SIMPLE"
UNSURE = "Refactor this Go function to use generics"
UNFAMILIAR = "xqzv kjwq pfft zzyx"


@pytest.fixture(scope="module")
def model() -> LocalModel:
    return LocalModel.load(MODEL_PATH)


def _classifier_calls(sim) -> list[dict]:
    return [c for c in sim_calls(sim) if c.get("model") == CLASSIFIER_MODEL]


def _chat(router, text: str) -> httpx.Response:
    response = httpx.post(f"{router.v1}/chat/completions", timeout=10, json={
        "model": "ai-router", "messages": [{"role": "user", "content": text}],
    })
    assert response.status_code == 200, response.text
    return response


@pytest.fixture(scope="module")
def cascade_router(sim, tmp_path_factory):
    """A router with LOCAL_CLASSIFIER=on and the shipped model."""
    server = start_router(sim_env(sim, LOCAL_CLASSIFIER="on"), tmp_path_factory.mktemp("cascade"))
    yield server
    stop_router(server)


@pytest.fixture(scope="module")
def shadow_router(sim, tmp_path_factory):
    """A router with LOCAL_CLASSIFIER=shadow: predicts locally, always asks the LLM."""
    server = start_router(sim_env(sim, LOCAL_CLASSIFIER="shadow"), tmp_path_factory.mktemp("shadow"))
    yield server
    stop_router(server)


# --- the shipped model file -------------------------------------------------------------------


def test_shipped_model_is_small_loads_fast_and_knows_the_classifiable_routes(model):
    assert MODEL_PATH.stat().st_size < 50 * 1024 * 1024
    started = time.perf_counter()
    LocalModel.load(MODEL_PATH)
    assert time.perf_counter() - started < 3.0
    assert set(model.labels) == {"SIMPLE", "MODERATE", "COMPLEX", "ENRICH"}
    assert set(model.thresholds) == set(model.labels)
    assert all(0.25 < t <= 1.01 for t in model.thresholds.values())
    assert model.threshold == min(model.thresholds.values())
    assert (MODEL_PATH.parent / "MODEL_CARD.md").is_file()
    assert (MODEL_PATH.parent / "coverage_accuracy.png").stat().st_size > 1000


def test_the_test_cases_are_what_their_names_say(model):
    """Guards the cases below: if a retrained model changes its mind, this says so first."""
    confident = model.predict([{"role": "user", "content": CONFIDENT}])
    assert confident.label == CONFIDENT_ROUTE and confident.probability >= model.thresholds[CONFIDENT_ROUTE]
    unsure = model.predict([{"role": "user", "content": UNSURE}])
    assert unsure.probability < model.thresholds[unsure.label]
    assert model.predict([{"role": "user", "content": UNFAMILIAR}]).known_share < model.min_known_share


def test_prediction_is_well_under_two_milliseconds(model):
    """A loose guard only; scripts/benchmark.py measures the 2 ms p50 target on one core."""
    messages = [{"role": "user", "content": "Can you explain how Python dictionaries handle hash collisions?"}]
    timings = sorted(model.predict(messages).ms for _ in range(300))
    assert timings[len(timings) // 2] < 2.0


def test_features_split_cjk_text_into_words():
    tokens = features("请总结上述对话的要点", "")
    assert "w:请" in tokens and "len:6-12" in tokens


# --- the cascade over HTTP (the simulator's call record is the proof) -------------------------


def test_confident_case_is_decided_locally_without_a_classifier_call(cascade_router, sim_reset):
    response = _chat(cascade_router, CONFIDENT)
    assert response.headers["x-ai-router-route"] == CONFIDENT_ROUTE
    assert response.headers["x-ai-router-reason"].startswith("local classifier (p=")
    assert _classifier_calls(sim_reset) == []
    record = wait_for_record(cascade_router, response.headers["x-session-id"])
    local = record["local_classification"]
    assert local["decided"] is True and local["label"] == CONFIDENT_ROUTE
    assert local["model_version"].startswith("rc-") and local["probability"] >= local["threshold"]


@pytest.mark.parametrize("text", [UNSURE, UNFAMILIAR])
def test_unsure_case_goes_to_the_llm_classifier(cascade_router, sim_reset, text):
    response = _chat(cascade_router, text)
    assert response.headers["x-ai-router-reason"] == "classifier"
    assert len(_classifier_calls(sim_reset)) == 1
    record = wait_for_record(cascade_router, response.headers["x-session-id"])
    assert record["local_classification"]["decided"] is False
    assert record["local_classification"]["note"]


def test_dry_run_shows_the_local_prediction(cascade_router, sim_reset):
    decision = httpx.post(f"{cascade_router.url}/api/route", timeout=10, json={
        "messages": [{"role": "user", "content": "latest news on the election"}], "dry_run": True,
    }).json()
    assert decision["route_label"] == "ENRICH"
    assert decision["local_classification"]["decided"] is True
    assert _classifier_calls(sim_reset) == []


def test_shadow_mode_records_both_and_always_asks_the_llm(shadow_router, sim_reset):
    httpx.post(f"{sim_reset.url}/sim/config", json={"classifier_answer": "MODERATE"}).raise_for_status()
    sessions = [_chat(shadow_router, text).headers["x-session-id"] for text in (CONFIDENT, UNSURE)]
    assert len(_classifier_calls(sim_reset)) == 2
    first, second = (wait_for_record(shadow_router, sid) for sid in sessions)
    # The LLM decided (MODERATE, as the simulator was told), the local model's SIMPLE is on record.
    assert first["route_label"] == "MODERATE" and first["route_reason"] == "classifier"
    assert first["classification_raw"] == "MODERATE"
    assert first["local_classification"]["label"] == CONFIDENT_ROUTE
    assert first["local_classification"]["decided"] is False
    assert first["local_classification"]["note"] == "shadow mode"
    assert second["local_classification"]["probability"] is not None


def test_failing_classifier_falls_back_to_the_local_guess(shadow_router, sim_reset):
    httpx.post(f"{sim_reset.url}/sim/faults",
               json={"fault": "500", "model": CLASSIFIER_MODEL, "count": -1}).raise_for_status()
    response = _chat(shadow_router, "latest news on the election")
    assert response.headers["x-ai-router-route"] == "ENRICH"
    reason = response.headers["x-ai-router-reason"]
    assert reason.startswith("fallback: classifier failed") and "local classifier's guess ENRICH" in reason
    assert len(_classifier_calls(sim_reset)) >= 1


# --- the node through its own interface: routes the model does not know -----------------------


@pytest.mark.anyio
async def test_a_route_added_after_training_sends_requests_to_the_llm(monkeypatch):
    from langgraph.runtime import Runtime

    from core.context import RouterContext
    from core.services import build_services
    from core.settings import Settings

    settings = Settings(local_classifier="on")
    context = RouterContext.from_settings(settings, build_services(settings))
    monkeypatch.setitem(ROUTES, "TRANSLATE", RouteSpec(backend="primary", prompt="primary/system"))
    update = await fast_classify({"messages": [{"role": "user", "content": CONFIDENT}]}, Runtime(context=context))
    assert "route" not in update
    assert update["local_classification"]["decided"] is False
    assert "TRANSLATE" in update["local_classification"]["note"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- training --------------------------------------------------------------------------------


def test_training_is_deterministic_and_writes_a_card(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    rows, per_source = [], {}
    for line in (ROOT / "evals" / "corpus" / "routing_corpus.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["source"] in ("clinc150", "gsm8k", "theoremqa", "snips") and per_source.get(row["source"], 0) < 25:
            per_source[row["source"]] = per_source.get(row["source"], 0) + 1
            rows.append(line)
    corpus.write_text("\n".join(rows) + "\n")
    args = ["--corpus", str(corpus), "--dataset", str(FIXTURE), "--no-sessions", "--features", "ngrams+shape",
            "--no-plot", "--quiet", "--workers", "1"]
    assert train.main([*args, "--out", str(tmp_path / "a")]) == 0
    assert train.main([*args, "--out", str(tmp_path / "b")]) == 0
    first, second = (tmp_path / "a" / "model.json").read_bytes(), (tmp_path / "b" / "model.json").read_bytes()
    assert first == second
    model = json.loads(first)
    assert model["labels"] == ["COMPLEX", "ENRICH", "MODERATE", "SIMPLE"]  # META left out
    card = (tmp_path / "a" / "MODEL_CARD.md").read_text()
    assert model["version"] in card and "leave-one-source-out" in card and "| small |" in card  # the fixture
    trained = LocalModel.load(tmp_path / "a" / "model.json")
    assert trained.predict([{"role": "user", "content": "what is the weather in Rome today"}]).label == "ENRICH"


def _record(folder: Path, session_id: str, query: str, label: str, reason: str, feedback=None) -> None:
    (folder / f"20260101T000000.000000Z_{session_id}.json").write_text(json.dumps({
        "session_id": session_id, "endpoint": "chat.completions", "user_query": query,
        "route_label": label, "route_reason": reason, "feedback": feedback or [],
    }))


def test_sessions_give_teacher_and_person_labels_and_never_the_models_own(tmp_path):
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    _record(sessions, "chatcmpl-" + "1" * 32, "tell me a joke about cats", "SIMPLE", "classifier")
    _record(sessions, "chatcmpl-" + "2" * 32, "hi", "SIMPLE", "local classifier (p=0.99 >= 0.75, rc-x)")
    _record(sessions, "chatcmpl-" + "3" * 32, "what is new in rust 2.0", "MODERATE", "classifier")
    _record(sessions, "chatcmpl-" + "4" * 32, "write a haiku", "MODERATE", "classifier (cached)",
            feedback=[{"score": 1, "received_at": "x", "expected_route": "SIMPLE"}])
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"chatcmpl-" + "3" * 32: {"expected_route": "ENRICH"}}))
    examples = train.load_sessions(sessions, None, labels, 2000)
    by_query = {e.query: (e.label, e.source, e.teacher) for e in examples}
    assert by_query == {
        "tell me a joke about cats": ("SIMPLE", "teacher", "SIMPLE"),
        "what is new in rust 2.0": ("ENRICH", "person", "MODERATE"),
        "write a haiku": ("SIMPLE", "person", "MODERATE"),
    }
    # A person's label beats the dataset's for the same text; duplicates are merged.
    dataset = [train.Example("What is new in Rust 2.0", "", "MODERATE", "dataset")]
    merged, dropped = train.merge([[e for e in examples if e.source == "person"], dataset], {"ENRICH", "MODERATE",
                                                                                            "SIMPLE"})
    assert {(e.query, e.label) for e in merged} == {("what is new in rust 2.0", "ENRICH"), ("write a haiku", "SIMPLE")}
    assert dropped == {"duplicate text": 1}


# --- training from the deployment's own sessions (--from-sessions) ----------------------------------


def _small_corpus(tmp_path: Path) -> tuple[Path, list[dict]]:
    """100 corpus rows to train on, and other rows of the same sources to play the deployment's traffic."""
    corpus, rows, traffic, per_source = tmp_path / "corpus.jsonl", [], [], {}
    for line in (ROOT / "evals" / "corpus" / "routing_corpus.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["source"] not in ("clinc150", "gsm8k", "theoremqa", "snips"):
            continue
        seen = per_source.get(row["source"], 0)
        per_source[row["source"]] = seen + 1
        if seen < 25:
            rows.append(line)
        elif seen < 40 and len(row["messages"]) == 1:
            traffic.append(row)
    corpus.write_text("\n".join(rows) + "\n")
    return corpus, traffic


def _timed_record(folder: Path, session_id: str, query: str, label: str, when: float, feedback=None) -> None:
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(when, UTC)
    (folder / f"{stamp:%Y%m%dT%H%M%S.%fZ}_{session_id}.json").write_text(json.dumps({
        "session_id": session_id, "endpoint": "chat.completions", "user_query": query, "timestamp": stamp.isoformat(),
        "route_label": label, "route_reason": "classifier", "feedback": feedback or [],
    }))


def test_from_sessions_trains_on_the_deployment_and_scores_its_latest_week(tmp_path):
    corpus, traffic = _small_corpus(tmp_path)
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    now, times = time.time(), []
    for k, row in enumerate(traffic):  # two weeks of traffic, one request every few hours
        when = now - (len(traffic) - k) * 14 * 86400 / len(traffic)
        times.append(when)
        feedback = [{"score": 1, "received_at": "x", "expected_route": row["route"]}] if k % 5 == 0 else None
        _timed_record(sessions, f"chatcmpl-{k:032d}", row["messages"][0]["content"], row["route"], when, feedback)
    args = ["--corpus", str(corpus), "--dataset", str(FIXTURE), "--sessions", str(sessions), "--traces",
            str(tmp_path / "no-traces"), "--labels", str(tmp_path / "no-labels.json"), "--features", "ngrams+shape",
            "--no-plot", "--quiet", "--workers", "1", "--no-nested"]
    out = tmp_path / "model"
    assert train.main([*args, "--from-sessions", "--out", str(out)]) == 0
    card = json.loads((out / "card.json").read_text())
    week = card["deployment_week"]
    recent = sum(1 for when in times if when > max(times) - 7 * 86400)
    assert week["items"] == recent and week["person_labels"] + week["teacher_labels"] == recent
    assert week["person_labels"] > 0 and week["teacher_labels"] > 0
    assert week["new"]["items"] == recent and week["shipped"] is None  # nothing shipped in that folder yet
    # The deployment's requests train the model but stay out of the public leave-one-source-out figures.
    assert not {"teacher", "sessions"} & set(card["source_counts"])
    model = json.loads((out / "model.json").read_text())
    assert model["metadata"]["deployment_examples"] == len(traffic)
    assert model["metadata"]["teacher_labels"] > 0
    assert "latest week (held out by time)" in (out / "MODEL_CARD.md").read_text()
    # The shipped model now has seen that week (it is in its training data), the next one has not: it is
    # worse on the week, and refused (exit 3, nothing written) unless forced.
    before = (out / "model.json").read_bytes()
    assert train.main([*args, "--from-sessions", "--out", str(out)]) == 3
    assert (out / "model.json").read_bytes() == before
    assert train.main([*args, "--from-sessions", "--out", str(out), "--force"]) == 0


def test_the_week_gate_refuses_a_model_worse_on_the_deployment():
    shipped = {"coverage": 0.6, "strict": 0.9, "backend": 0.97, "complex_kept_share": 0.0,
               "enrich_without_search_share": 0.0}
    assert train.compare_week(shipped, dict(shipped))[0]
    assert not train.compare_week(shipped, {**shipped, "backend": 0.95})[0]
    assert not train.compare_week(shipped, {**shipped, "complex_kept_share": 0.02})[0]
    assert train.compare_week(None, {**shipped, "backend": 0.5})[0]  # nothing shipped to compare with
