"""Evaluators on hand-made runs with known answers, offline and through `langsmith.evaluate`."""

from __future__ import annotations

import pytest
from langsmith.evaluation import evaluate

from evals.evaluators import (
    ROW_EVALUATORS,
    SUMMARY_EVALUATORS,
    as_langsmith,
    cost_table,
    enrichment_health,
    evaluate_offline,
    latency_table,
    logged_agreement,
    make_answer_judge,
    percentile,
    route_accuracy,
)
from core.settings import Settings
from evals.report import write_report
from tests.conftest import sim_env


def ex(eid: str, route: str | None = None, logged: str | None = None, text: str = "q", **meta) -> dict:
    return {
        "inputs": {"messages": [{"role": "user", "content": text}]},
        "outputs": {"route": route} if route else {},
        "metadata": {"example_id": eid, "logged_route": logged, **meta},
    }


def res(eid: str, route: str | None, **fields) -> dict:
    return {"example_id": eid, "route": route, "steps": [], **fields}


class Obj:
    """Anything with the attributes LangSmith's Run and Example have."""

    def __init__(self, **fields) -> None:
        self.__dict__.update(fields)


def test_route_accuracy_and_logged_agreement():
    run = Obj(outputs={"route": "ENRICH"})
    assert route_accuracy(run, Obj(outputs={"route": "ENRICH"}))["score"] == 1
    assert route_accuracy(run, Obj(outputs={"route": "moderate"}))["score"] == 0
    assert route_accuracy(run, Obj(outputs={}))["score"] is None  # unlabelled: does not count
    assert logged_agreement(run, Obj(metadata={"logged_route": "ENRICH"}))["score"] == 1
    assert (
        logged_agreement(run, Obj(metadata={"logged_route": "MODERATE"}))["comment"]
        == "logged MODERATE, now ENRICH"
    )
    assert logged_agreement(run, Obj(metadata={}))["score"] is None


@pytest.mark.parametrize(
    ("steps", "enrichment", "answer", "score", "comment"),
    [
        (
            [{"node": "enrich", "status": "error", "error": "HTTP 500"}],
            None,
            "x",
            0,
            "search errored: HTTP 500",
        ),
        ([{"node": "enrich", "status": "ok"}], "", "x", 0, "search returned nothing"),
        (
            [{"node": "enrich", "status": "ok"}],
            "Brent crude settled at 83 dollars after OPEC announced cuts",
            "I cannot browse the web.",
            0,
            "context unused",
        ),
        (
            [{"node": "enrich", "status": "ok"}],
            "Brent crude settled at 83 dollars after OPEC announced cuts",
            "Brent crude settled at $83 after OPEC's cuts.",
            1,
            "used",
        ),
        ([], None, None, None, "no search step"),
    ],
)
def test_enrichment_health(steps, enrichment, answer, score, comment):
    run = Obj(
        outputs={
            "mode": "full",
            "route": "ENRICH",
            "steps": steps,
            "enrichment": enrichment,
            "answer": answer,
        }
    )
    verdict = enrichment_health(run, Obj(metadata={}))
    assert verdict["score"] == score and comment in verdict["comment"]


def test_enrichment_health_judges_the_logged_session_on_a_routing_replay():
    logged = {"logged_route": "ENRICH", "steps": [{"node": "enrich", "status": "error", "error": "timeout"}]}
    assert (
        enrichment_health(Obj(outputs={"mode": "routing", "route": "ENRICH"}), Obj(metadata=logged))["score"]
        == 0
    )
    assert (
        enrichment_health(
            Obj(outputs={"mode": "routing", "route": "SIMPLE"}), Obj(metadata={"logged_route": "SIMPLE"})
        )["score"]
        is None
    )


def test_summary_metrics_on_known_runs():
    examples = [ex("a", "META"), ex("b", "META"), ex("c", "SIMPLE"), ex("d", "COMPLEX"), ex("e")]
    results = [
        res("a", "META", total_ms=2.0),
        res("b", "MODERATE", classification_ms=10.0, total_ms=12.0),  # a missed META prompt
        res("c", "META", total_ms=3.0),  # a false META
        res(
            "d",
            "COMPLEX",
            backend="xai",
            classification_ms=30.0,
            total_ms=500.0,
            steps=[
                {
                    "node": "generate",
                    "provider": "xai",
                    "duration_ms": 460.0,
                    "usage": {"prompt_tokens": 1_000_000, "completion_tokens": 2_000_000},
                }
            ],
        ),
        res("e", "SIMPLE", classification_ms=20.0, total_ms=22.0),
    ]
    evaluation = evaluate_offline(results, examples)
    assert evaluation.summary["route_accuracy_overall"] == pytest.approx(2 / 4)
    assert evaluation.summary["meta_precision"] == pytest.approx(1 / 2)
    assert evaluation.summary["meta_recall"] == pytest.approx(1 / 2)
    assert evaluation.summary["cloud_share"] == pytest.approx(1 / 5)
    # 1M input tokens at 0.20 USD + 2M output tokens at 0.50 USD (the default prices)
    assert evaluation.summary["xai_cost_usd"] == pytest.approx(0.20 + 1.00)
    assert evaluation.summary["latency_total_p50_ms_COMPLEX"] == 500.0
    assert cost_table([Obj(outputs=r) for r in results], 1.0, 1.0)["usd"] == pytest.approx(3.0)
    table = latency_table([Obj(outputs=r) for r in results])
    assert table["COMPLEX"]["step:generate"] == {"p50": 460.0, "p95": 460.0, "n": 1}


def test_percentile_interpolates():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert percentile([], 50) is None


def test_answer_judge_reads_the_grade():
    seen = []

    def ask(messages):
        seen.append(messages)
        return "SCORE: 4 - correct, a little long."

    judge = make_answer_judge(ask)
    verdict = judge(
        Obj(outputs={"answer": "Paris.", "enrichment": None}), Obj(inputs=ex("x", text="Capital?")["inputs"])
    )
    assert verdict == {
        "key": "answer_quality",
        "score": 0.75,
        "comment": "SCORE: 4 - correct, a little long.",
    }
    assert "<question>\nCapital?\n</question>" in seen[0][1]["content"] and "Paris." in seen[0][1]["content"]
    assert judge(Obj(outputs={"answer": None}), Obj(inputs={}))["score"] is None
    assert (
        make_answer_judge(lambda m: "great answer")(Obj(outputs={"answer": "a"}), Obj(inputs={}))["score"]
        is None
    )


def test_report_has_plots_disagreements_and_baseline_comparison(tmp_path):
    examples = [
        ex("a", "ENRICH", "MODERATE", timestamp="2026-11-25T10:01:00"),
        ex("b", "SIMPLE", "SIMPLE", timestamp="2026-11-25T11:01:00"),
    ]
    results = [res("a", "MODERATE", total_ms=5.0, classification_ms=4.0), res("b", "SIMPLE", total_ms=4.0)]
    evaluation = evaluate_offline(results, examples)
    baseline = {"metrics": {"route_accuracy_overall": 1.0}, "routes": {"a": "ENRICH", "b": "SIMPLE"}}
    summary = write_report(
        tmp_path, examples, results, evaluation, {"dataset": "x", "mode": "routing"}, baseline
    )
    assert summary["baseline"]["delta"] == pytest.approx(-0.5)
    assert summary["baseline"]["changed"] == [{"example_id": "a", "before": "ENRICH", "after": "MODERATE"}]
    md = (tmp_path / "report.md").read_text()
    assert "- `a`: expected ENRICH, got MODERATE" in md and "- `a`: ENRICH → MODERATE" in md
    assert "## Changed since logged (0)" in md  # a was MODERATE when logged, and still is
    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg") == 4  # confusion, latency, route share over time, cost


def test_langsmith_evaluate_runs_the_same_evaluators_offline(sim, sim_reset, monkeypatch):
    """`langsmith.evaluate` with upload_results=False, no key, the graph run in-process on the simulator."""
    from evals.run import make_target

    for key in ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    env = sim_env(sim)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    try:
        examples = [
            ex("hi", "SIMPLE", text="hello"),
            ex("news", "ENRICH", text="What's the latest news on fusion?"),
            ex("proof", "SIMPLE", text="Prove that e is irrational"),
        ]
        _, rows = as_langsmith([{}] * 3, examples)
        results = evaluate(
            make_target("routing", settings),
            data=rows,
            evaluators=ROW_EVALUATORS,
            summary_evaluators=SUMMARY_EVALUATORS,
            upload_results=False,
            max_concurrency=0,
        )
        scores = {}
        for row in results:
            for item in row["evaluation_results"]["results"]:
                scores.setdefault(item.key, []).append(item.score)
        summary = {r.key: r.score for r in results._summary_results["results"]}
    finally:
        monkeypatch.undo()
    assert sorted(s for s in scores["route_accuracy"]) == [0, 1, 1]
    assert summary["route_accuracy_overall"] == pytest.approx(2 / 3)
    assert summary["cloud_share"] == pytest.approx(1 / 3)  # the proof went to xAI


def test_full_replay_generates_and_measures_cost_and_enrichment(sim, sim_reset, monkeypatch):
    """In-process full replay: answers, xAI tokens priced, and the simulator's search left unused."""
    import asyncio

    from evals.replay import replay

    for key, value in sim_env(sim).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("EVAL_XAI_INPUT_PRICE", "1000000")  # 1 USD per token: the cost equals the token count
    monkeypatch.setenv("EVAL_XAI_OUTPUT_PRICE", "1000000")
    try:
        examples = [
            ex("w", "ENRICH", text="What's the weather in Oslo today?"),
            ex("p", "COMPLEX", text="Prove that e is irrational"),
            ex("h", "SIMPLE", text="hello"),
        ]
        results = asyncio.run(replay(examples, mode="full", settings=Settings(), progress=False, concurrency=3))
        evaluation = evaluate_offline(results, examples)
    finally:
        monkeypatch.undo()
    assert [r["route"] for r in results] == ["ENRICH", "COMPLEX", "SIMPLE"]
    assert all(r["answer"] and r["answer"].startswith("[sim:") for r in results)
    assert [s["node"] for s in results[0]["steps"]] == ["classify", "enrich", "generate"]
    xai_tokens = sum(  # chat completions count prompt/completion tokens, /v1/responses input/output tokens
        s["usage"].get("prompt_tokens", s["usage"].get("input_tokens", 0))
        + s["usage"].get("completion_tokens", s["usage"].get("output_tokens", 0))
        for r in results
        for s in r["steps"]
        if s["provider"] == "xai" and s["usage"]
    )
    assert xai_tokens > 0 and evaluation.summary["xai_cost_usd"] == pytest.approx(xai_tokens)
    assert evaluation.summary["cloud_share"] == pytest.approx(2 / 3)
    # The simulator's primary echoes the question, not the search: the evaluator must notice.
    assert evaluation.rows[0]["enrichment_health"]["score"] == 0
    assert "context unused" in evaluation.rows[0]["enrichment_health"]["comment"]
