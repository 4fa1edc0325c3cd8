"""The cascade in the evals: evaluators, the two-arm comparison, the cross-validated figure and the gate."""

from __future__ import annotations

import json

import httpx
import pytest

from evals.cascade import cascade_gate, cascade_section, cross_validated_routes, model_card
from evals.evaluators import (
    decided_locally,
    evaluate_offline,
    local_accuracy,
    local_classifier_summary,
    shadow_agreement,
)
from tests.conftest import ROOT, sim_env, start_router, stop_router, wait_for_record
from tests.test_evals_loop import run_module

MODEL = ROOT / "models" / "router_classifier" / "model.json"
REGRESSION = ROOT / "evals" / "datasets" / "routing_regression.jsonl"


class Obj:
    """Anything with the attributes LangSmith's Run and Example have."""

    def __init__(self, **fields) -> None:
        self.__dict__.update(fields)


def local(label: str | None, decided: bool, note: str | None = None, ms: float = 0.2) -> dict:
    return {
        "label": label,
        "probability": 0.9,
        "threshold": 0.8,
        "model_version": "rc-test",
        "decided": decided,
        "ms": ms,
        "note": note,
    }


def ex(eid: str, route: str | None = None, **meta) -> dict:
    return {
        "inputs": {"messages": [{"role": "user", "content": eid}]},
        "outputs": {"route": route} if route else {},
        "metadata": {"example_id": eid, **meta},
    }


def res(eid: str, route: str, reason: str, lc: dict | None = None, ms: float | None = None) -> dict:
    return {
        "example_id": eid,
        "route": route,
        "route_reason": reason,
        "local_classification": lc,
        "classification_ms": ms,
        "steps": [],
    }


def test_row_evaluators_score_local_decisions_and_shadow_agreement():
    labelled = Obj(outputs={"route": "SIMPLE"}, metadata={})
    decided_right = Obj(outputs={"route": "SIMPLE", "local_classification": local("SIMPLE", True)})
    decided_wrong = Obj(outputs={"route": "ENRICH", "local_classification": local("ENRICH", True)})
    unsure = Obj(outputs={"route": "SIMPLE", "local_classification": local("COMPLEX", False, "unsure")})
    rule = Obj(outputs={"route": "META", "local_classification": None})
    assert [decided_locally(r, labelled)["score"] for r in (decided_right, unsure, rule)] == [1, 0, None]
    assert local_accuracy(decided_right, labelled)["score"] == 1
    assert local_accuracy(decided_wrong, labelled)["score"] == 0
    assert local_accuracy(unsure, labelled)["score"] is None  # the LLM decided: not the local model's doing
    assert local_accuracy(decided_right, Obj(outputs={}, metadata={}))["score"] is None  # no label

    def logged(lc: dict | None, route: str = "ENRICH", reason: str = "classifier") -> Obj:
        return Obj(
            outputs={},
            metadata={"logged_local_classification": lc, "logged_route": route, "logged_reason": reason},
        )

    assert shadow_agreement(rule, logged(local("ENRICH", False, "shadow mode")))["score"] == 1
    assert shadow_agreement(rule, logged(local("SIMPLE", False, "shadow mode")))["score"] == 0
    assert (
        shadow_agreement(rule, logged(local("ENRICH", True)))["score"] is None
    )  # decided: nothing to compare
    assert shadow_agreement(rule, logged(local("ENRICH", False), reason="fallback: timeout"))["score"] is None
    assert shadow_agreement(rule, logged(None))["score"] is None


def test_summary_evaluator_counts_only_requests_the_local_model_saw():
    examples = [ex("a", "SIMPLE"), ex("b", "ENRICH"), ex("c", "COMPLEX"), ex("d", "META"), ex("e")]
    results = [
        res("a", "SIMPLE", "local classifier (p=0.99)", local("SIMPLE", True, ms=0.1)),
        res("b", "MODERATE", "local classifier (p=0.95)", local("MODERATE", True, ms=0.3)),
        res("c", "COMPLEX", "classifier", local("COMPLEX", False, "unsure", ms=0.2), ms=40.0),
        res("d", "META", "meta rule openwebui.title"),
        res("e", "ENRICH", "classifier", local("SIMPLE", False, "unsure", ms=0.4), ms=50.0),
    ]
    summary = {
        r["key"]: r["score"]
        for r in local_classifier_summary(
            [Obj(outputs=r) for r in results],
            [Obj(outputs=e["outputs"], metadata=e["metadata"]) for e in examples],
        )["results"]
    }
    assert summary["local_share"] == pytest.approx(2 / 4)  # META never reached it
    assert summary["local_accuracy"] == pytest.approx(1 / 2)
    assert summary["local_llm_agreement"] == pytest.approx(1 / 2)  # c agreed, e did not
    assert summary["local_ms_p50"] == pytest.approx(0.25)
    assert summary["shadow_agreement"] is None  # no logged sessions in this dataset
    # The same numbers reach the offline evaluation the report is built from.
    assert evaluate_offline(results, examples).summary["local_share"] == pytest.approx(0.5)


def test_cascade_section_compares_the_arms_and_prices_the_calls_avoided():
    examples = [
        ex("a", "SIMPLE"),
        ex("b", "ENRICH"),
        ex("c", "COMPLEX"),
        ex("d", "META"),
        ex("e", "MODERATE"),
    ]
    cascade = [
        res("a", "SIMPLE", "local classifier", local("SIMPLE", True, ms=0.5)),
        res("b", "MODERATE", "local classifier", local("MODERATE", True, ms=0.5)),
        res("c", "COMPLEX", "classifier", local("COMPLEX", False, "unsure", ms=0.5), ms=30.0),
        res("d", "META", "meta rule x"),
        res("e", "MODERATE", "local classifier", local("MODERATE", True, ms=0.5)),
    ]
    llm_only = [
        res("a", "MODERATE", "classifier", ms=100.0),
        res("b", "ENRICH", "classifier", ms=120.0),
        res("c", "COMPLEX", "classifier", ms=110.0),
        res("d", "META", "meta rule x"),
        res("e", "MODERATE", "classifier", ms=80.0),
    ]
    section = cascade_section(examples, cascade, llm_only, model_path=MODEL, cross_validate=False)
    assert section["local_share"] == pytest.approx(3 / 4) and section["local_decided"] == 3
    assert section["local_accuracy"] == pytest.approx(2 / 3)
    assert section["cascade"] == {"accuracy": pytest.approx(4 / 5), "right": 4, "labelled": 5}
    assert section["llm_only"] == {"accuracy": pytest.approx(4 / 5), "right": 4, "labelled": 5}
    saved = section["time_saved"]
    assert saved["calls_avoided"] == 3 and saved["ms_sum"] == pytest.approx(300.0)  # a, b, e at LLM prices
    assert saved["local_ms_sum"] == pytest.approx(2.0) and saved["net_ms_sum"] == pytest.approx(298.0)
    assert [i["example_id"] for i in section["fixed_by_cascade"]] == ["a"]
    assert [i["example_id"] for i in section["broken_by_cascade"]] == ["b"]
    assert section["in_sample"] is False  # made-up texts are not in the model's training set
    assert section["undecided_agreement"] == 1.0  # c: local COMPLEX, LLM COMPLEX

    assert cascade_section(examples, llm_only, None, model_path=MODEL) is None  # local classifier off
    alone = cascade_section(examples, cascade, None, model_path=MODEL, llm_only_note="why")
    assert alone["llm_only"] is None and alone["llm_only_note"] == "why"


def test_gate_rule_and_margin():
    def section(cascade: float, llm: float, cv: float | None = None) -> dict:
        return {
            "cascade": {"accuracy": cascade},
            "llm_only": {"accuracy": llm},
            "cross_validated": {"accuracy": cv} if cv is not None else {"skipped": "x"},
        }

    assert cascade_gate(section(0.80, 0.805), 0.01)[0]  # half a point below: within one point
    ok, sentence = cascade_gate(section(0.79, 0.81), 0.01)
    assert not ok and "cascade 0.790 vs LLM-only 0.810: below" in sentence
    assert cascade_gate(section(0.79, 0.81), 0.05)[0]  # the margin is the knob
    ok, sentence = cascade_gate(section(0.95, 0.81, cv=0.70), 0.01)  # in-sample fine, held-out not
    assert not ok and "cross-validated cascade 0.700 vs LLM-only 0.810: below" in sentence
    assert cascade_gate(None, 0.01) == (True, "no local classifier in this replay: nothing to compare")
    assert cascade_gate({"llm_only": None, "llm_only_note": "n"}, 0.01)[0]


def test_cross_validated_cascade_on_the_regression_set():
    """The cascade's cross-validated figure (k-fold on the replayed dataset, `evals.train`'s n-gram learner).

    The model card's own held-out figures are leave-one-source-out over the corpus now, not k-fold on
    this set, so they are not compared here (tests/test_router_loso.py covers those)."""
    examples = [json.loads(x) for x in REGRESSION.read_text().splitlines() if x.strip()]
    rule_routes = {"META", "VISION"}
    # An LLM-only arm that always says MODERATE (rules still decide META and VISION).
    llm_only = [
        res(e["metadata"]["example_id"], e["outputs"]["route"], "meta rule")
        if e["outputs"]["route"] in rule_routes
        else res(e["metadata"]["example_id"], "MODERATE", "classifier")
        for e in examples
    ]
    cv = cross_validated_routes(examples, llm_only)
    assert cv["items"] == 271
    assert 0.3 < cv["local_share"] < 1.0 and cv["local_accuracy"] > 0.9
    assert model_card(MODEL)["held_out"]["coverage"] is not None  # the card's LOSO figure is still quoted
    # Where the held-out model does not decide, the LLM-only route stands: MODERATE right, others wrong.
    moderate = sum(1 for e in examples if e["outputs"]["route"] == "MODERATE")
    rules = sum(1 for e in examples if e["outputs"]["route"] in rule_routes)
    assert (rules + moderate) / len(examples) < cv["accuracy"] < 1.0


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    """Every fifth regression row (all routes, about 60): a fast two-arm eval."""
    tmp = tmp_path_factory.mktemp("cascade")
    rows = REGRESSION.read_text().splitlines()[::5]
    path = tmp / "subset.jsonl"
    path.write_text("\n".join(rows) + "\n")
    # The baseline gate is not under test here: a baseline any run passes.
    baseline = tmp / "baseline.json"
    baseline.write_text(json.dumps({"metrics": {"route_accuracy_overall": 0.0}, "routes": {}, "config": {}}))
    return tmp, path, baseline


def cascade_env(sim, **extra: str) -> dict[str, str]:
    return {**sim_env(sim), "LOCAL_CLASSIFIER": "on", "LOCAL_CLASSIFIER_MODEL_PATH": str(MODEL), **extra}


def test_make_eval_runs_both_arms_reports_the_cascade_and_the_gate_passes(sim, subset):
    tmp, dataset, baseline = subset
    done = run_module(
        "evals.run",
        "--dataset",
        str(dataset),
        "--out",
        str(tmp / "pass"),
        "--baseline",
        str(baseline),
        "--gate",
        "--no-progress",
        env=cascade_env(sim),
        cwd=tmp,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cascade gate passed: cascade" in done.stdout and "cross-validated cascade" in done.stdout
    summary = json.loads((tmp / "pass" / "summary.json").read_text())
    cascade = summary["cascade"]
    assert summary["config"]["local_classifier"] == "on"
    # In-sample (it saw these), at thresholds chosen out of source on the corpus: most decided, nearly all right.
    assert cascade["local_share"] > 0.5 and cascade["local_accuracy"] > 0.9
    assert cascade["in_sample"] and cascade["in_training_data"] == summary["labelled"]
    assert cascade["llm_only"]["accuracy"] < cascade["cascade"]["accuracy"]  # the simulator's keyword rules
    assert cascade["time_saved"]["calls_avoided"] == cascade["local_decided"]
    assert cascade["cross_validated"]["accuracy"] is not None
    # The LLM-only arm really ran without the local model: no prediction recorded, a classifier call each.
    llm_rows = [json.loads(x) for x in (tmp / "pass" / "llm_only" / "results.jsonl").read_text().splitlines()]
    assert len(llm_rows) == summary["examples"]
    assert all(r["local_classification"] is None for r in llm_rows)
    report = (tmp / "pass" / "report.md").read_text()
    assert "## Cascade (local classifier → LLM classifier)" in report and "in-sample and optimistic" in report
    assert "| LLM-only route accuracy" in report and "cross-validated" in report
    page = (tmp / "pass" / "report.html").read_text()
    # Confusion, latency, cost and the cascade's accuracy bars (matplotlib keeps titles as SVG comments).
    assert page.count("<svg") == 4 and "<!-- Cascade: " in page


def test_gate_fails_when_the_local_model_decides_everything_wrongly(sim, subset, tmp_path):
    tmp, dataset, baseline = subset
    # A doctored copy of the shipped model: the same weights with its label names rotated, so each
    # confident prediction names the wrong route; threshold 0 lets it decide everything it knows.
    data = json.loads(MODEL.read_text())
    data["labels"] = data["labels"][1:] + data["labels"][:1]
    wrong = tmp_path / "wrong" / "model.json"
    wrong.parent.mkdir()
    wrong.write_text(json.dumps(data))
    env = cascade_env(sim, LOCAL_CLASSIFIER_MODEL_PATH=str(wrong), LOCAL_CLASSIFIER_THRESHOLD="0")
    done = run_module(
        "evals.run",
        "--dataset",
        str(dataset),
        "--out",
        str(tmp / "fail"),
        "--baseline",
        str(baseline),
        "--gate",
        "--no-progress",
        env=env,
        cwd=tmp,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "gate passed: accuracy" in done.stdout  # the baseline gate alone would have let it through
    assert "cascade gate FAILED: cascade" in done.stdout
    cascade = json.loads((tmp / "fail" / "summary.json").read_text())["cascade"]
    assert cascade["local_accuracy"] < 0.3 and cascade["broken_by_cascade"]
    assert "names no readable training dataset" in cascade["caveat"]  # no card beside the doctored file


def test_shadow_sessions_over_http_give_the_agreement_with_the_llm(sim, tmp_path):
    """Shadow mode on a real router: its sessions become a dataset, replayed over HTTP (/api/route)."""
    httpx.post(f"{sim.url}/sim/reset").raise_for_status()
    router = start_router(cascade_env(sim, LOCAL_CLASSIFIER="shadow"), tmp_path)
    try:
        client = router.client()
        # The simulator's keyword classifier calls "good morning" MODERATE, the local model SIMPLE.
        queries = [
            "good morning",
            "Will it rain in London tomorrow?",
            "Prove the Cauchy-Schwarz inequality",
            "Write a Python function that reverses a string",
        ]
        ids = [
            client.chat.completions.create(model="ai-router", messages=[{"role": "user", "content": q}]).id
            for q in queries
        ]
        records = [wait_for_record(router, sid) for sid in ids]
        env = {
            **cascade_env(sim, LOCAL_CLASSIFIER="shadow"),
            "SESSION_LOG_DIR": str(router.session_dir),
            "TRACE_LOG_DIR": str(router.trace_dir),
        }
        dataset = tmp_path / "sessions.jsonl"
        done = run_module("evals.build_dataset", "build", "--out", str(dataset), env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        done = run_module(
            "evals.run",
            "--dataset",
            str(dataset),
            "--router",
            router.url,
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
            env=env,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        stop_router(router)
    assert all(not r["local_classification"]["decided"] for r in records)
    agree = [r["local_classification"]["label"] == r["route_label"] for r in records]
    assert 0 < sum(agree) < len(agree)  # the greeting disagrees, so the figure can tell
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["metrics"]["shadow_agreement"] == pytest.approx(sum(agree) / len(agree))
    # The replay went through /api/route and kept each answer's local prediction.
    rows = [json.loads(x) for x in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert all(r["local_classification"]["note"] == "shadow mode" for r in rows)
    assert summary["metrics"]["local_llm_agreement"] == pytest.approx(sum(agree) / len(agree))
    assert summary["cascade"]["mode"] == "shadow" and summary["cascade"]["llm_only"] is None
