"""Evaluators in LangSmith's signatures, so they run offline and through `langsmith.evaluate` alike.

Row evaluators take `(run, example)` and return `{"key", "score", "comment"}`; `run.outputs`
is a replay result (`evals.replay`), `example` a dataset row (`inputs`, `outputs.route` when
labelled, `metadata.logged_route` and the logged steps for sessions). Summary evaluators
take `(runs, examples)` and return `{"results": [...]}`. A score of None means "does not
apply to this example" (no label, not an ENRICH answer, …).

Offline, `evaluate_offline` wraps rows in `langsmith.schemas.Run` / `Example` and calls the
same functions; `langsmith.evaluation.evaluate(target, data=examples, evaluators=ROW_EVALUATORS,
summary_evaluators=SUMMARY_EVALUATORS, upload_results=False)` runs them unchanged.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from langsmith.schemas import Example, Run

from evals.settings import EVAL_PROMPTS, EvalSettings

_UNUSED_OVERLAP = 0.1  # below this share of the search's distinctive words, the answer ignored it
_WORD = re.compile(r"[a-z][a-z0-9'-]{4,}")
_STOP = frozenset(
    "about after again their there these those which while would could should other where "
    "being because before under among between".split()
)


def _outputs(run: Any) -> dict[str, Any]:
    return dict(getattr(run, "outputs", None) or {})


def _reference(example: Any) -> str | None:
    route = (getattr(example, "outputs", None) or {}).get("route")
    return route.upper() if isinstance(route, str) else None


def _metadata(example: Any) -> dict[str, Any]:
    return dict(getattr(example, "metadata", None) or {})


def route_accuracy(run: Any, example: Any) -> dict[str, Any]:
    """1 when the replayed route equals the labelled one; None when the example has no label."""
    expected, got = _reference(example), _outputs(run).get("route")
    if expected is None:
        return {"key": "route_accuracy", "score": None, "comment": "no expected route"}
    return {
        "key": "route_accuracy",
        "score": int(got == expected),
        "comment": f"expected {expected}, got {got}",
    }


def logged_agreement(run: Any, example: Any) -> dict[str, Any]:
    """1 when the replay decided what the router decided when the session was logged."""
    logged, got = _metadata(example).get("logged_route"), _outputs(run).get("route")
    if logged is None:
        return {"key": "logged_agreement", "score": None, "comment": "no logged decision"}
    return {"key": "logged_agreement", "score": int(got == logged), "comment": f"logged {logged}, now {got}"}


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def enrichment_health(run: Any, example: Any) -> dict[str, Any]:
    """For an ENRICH answer: 0 when the search errored, came back empty, or the answer ignored it.

    Judges the replay when it generated (`mode == full`), else the logged session in the
    example's metadata. "Ignored" means fewer than 10% of the search text's distinctive words
    (5+ letters, not stop words) appear in the answer.
    """
    out = _outputs(run)
    source = out if out.get("mode") == "full" else _metadata(example)
    route = out.get("route") if source is out else source.get("logged_route")
    if route != "ENRICH":
        return {"key": "enrichment_health", "score": None, "comment": "not ENRICH"}
    steps = source.get("steps") or []
    search = next((s for s in steps if s.get("node") == "enrich"), None)
    if search is None:
        return {
            "key": "enrichment_health",
            "score": None,
            "comment": "no search step (dry run or no xAI key)",
        }
    if search.get("status") == "error":
        return {"key": "enrichment_health", "score": 0, "comment": f"search errored: {search.get('error')}"}
    context = source.get("enrichment") or ""
    if not context.strip():
        return {"key": "enrichment_health", "score": 0, "comment": "search returned nothing"}
    answer = source.get("answer")
    if answer is None:
        return {"key": "enrichment_health", "score": None, "comment": "no answer text logged"}
    wanted = _words(context)
    used = len(wanted & _words(answer)) / len(wanted) if wanted else 1.0
    if used < _UNUSED_OVERLAP:
        return {
            "key": "enrichment_health",
            "score": 0,
            "comment": f"context unused: {used:.0%} of the search's distinctive words are in the answer",
        }
    return {"key": "enrichment_health", "score": 1, "comment": f"{used:.0%} of the search's words used"}


def _local(run: Any) -> dict[str, Any] | None:
    local = _outputs(run).get("local_classification")
    return local if isinstance(local, dict) else None


def decided_locally(run: Any, example: Any) -> dict[str, Any]:
    """1 when the local classifier settled the route, 0 when it left it to the LLM classifier.

    None when it never ran: META and VISION are decided by rules before it, and
    `LOCAL_CLASSIFIER=off` skips it. So the mean is the share of classifiable traffic decided locally.
    """
    local = _local(run)
    if local is None:
        return {"key": "decided_locally", "score": None, "comment": "local classifier did not run"}
    if local.get("decided"):
        return {
            "key": "decided_locally",
            "score": 1,
            "comment": f"{local.get('label')} p={local.get('probability')}",
        }
    return {"key": "decided_locally", "score": 0, "comment": local.get("note") or "not decided"}


def local_accuracy(run: Any, example: Any) -> dict[str, Any]:
    """For a route the local classifier decided: 1 when its label is the labelled route."""
    local, expected = _local(run), _reference(example)
    if local is None or not local.get("decided"):
        return {"key": "local_accuracy", "score": None, "comment": "not decided locally"}
    if expected is None:
        return {"key": "local_accuracy", "score": None, "comment": "no expected route"}
    return {
        "key": "local_accuracy",
        "score": int(local.get("label") == expected),
        "comment": f"expected {expected}, local classifier said {local.get('label')}",
    }


def _llm_decided(reason: Any) -> bool:
    # "classifier" or "classifier (cached)": the LLM classifier's own answer, not a fallback
    # or a rule (the same test `evals.train` uses for teacher labels).
    return isinstance(reason, str) and reason.startswith("classifier")


def shadow_agreement(run: Any, example: Any) -> dict[str, Any]:
    """On a logged session the local classifier did not decide: 1 when its prediction was the LLM's decision.

    Reads the session's logged `local_classification` (dataset rows built by `evals.build_dataset`
    carry it) and the logged route, so it measures live traffic in shadow mode (or the unsure
    requests in `on` mode), whatever the replay does. None when the session has no undecided
    local prediction or its route did not come from the LLM classifier.
    """
    meta = _metadata(example)
    local = meta.get("logged_local_classification")
    if not isinstance(local, dict) or local.get("decided") or not local.get("label"):
        return {"key": "shadow_agreement", "score": None, "comment": "no undecided local prediction logged"}
    if not _llm_decided(meta.get("logged_reason")):
        return {
            "key": "shadow_agreement",
            "score": None,
            "comment": "logged route not from the LLM classifier",
        }
    logged = meta.get("logged_route")
    return {
        "key": "shadow_agreement",
        "score": int(local["label"] == logged),
        "comment": f"local {local['label']} ({local.get('note')}), LLM {logged}",
    }


ROW_EVALUATORS: list[Callable[[Any, Any], dict[str, Any]]] = [
    route_accuracy,
    logged_agreement,
    enrichment_health,
    decided_locally,
    local_accuracy,
    shadow_agreement,
]


def _labelled_pairs(runs: Sequence[Any], examples: Sequence[Any]) -> list[tuple[str | None, str]]:
    return [
        (_outputs(r).get("route"), ref)
        for r, e in zip(runs, examples, strict=True)
        if (ref := _reference(e)) is not None
    ]


def meta_detection(runs: Sequence[Any], examples: Sequence[Any]) -> dict[str, Any]:
    """Precision and recall of META against labelled examples (META is decided by rules)."""
    pairs = _labelled_pairs(runs, examples)
    tp = sum(1 for got, ref in pairs if got == "META" and ref == "META")
    fp = sum(1 for got, ref in pairs if got == "META" and ref != "META")
    fn = sum(1 for got, ref in pairs if got != "META" and ref == "META")
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return {
        "results": [
            {"key": "meta_precision", "score": precision, "comment": f"{tp} true, {fp} false META"},
            {"key": "meta_recall", "score": recall, "comment": f"{tp} found, {fn} missed"},
        ]
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    data = sorted(values)
    if not data:
        return None
    position = (len(data) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (position - low)


def latency_table(runs: Sequence[Any]) -> dict[str, dict[str, dict[str, float | None]]]:
    """p50/p95/count of classification, total and per-node step times, by replayed route."""
    samples: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        out = _outputs(run)
        route = out.get("route") or "(none)"
        bucket = samples.setdefault(route, {})
        if out.get("classification_ms") is not None:
            bucket.setdefault("classification", []).append(out["classification_ms"])
        if out.get("total_ms") is not None:
            bucket.setdefault("total", []).append(out["total_ms"])
        for step in out.get("steps") or []:
            if step.get("duration_ms") is not None:
                bucket.setdefault(f"step:{step.get('node')}", []).append(step["duration_ms"])
    return {
        route: {
            name: {"p50": percentile(v, 50), "p95": percentile(v, 95), "n": len(v)}
            for name, v in sorted(metrics.items())
        }
        for route, metrics in sorted(samples.items())
    }


def latency(runs: Sequence[Any], examples: Sequence[Any]) -> dict[str, Any]:
    """p50 and p95 of classification and total time per route (the full table is in the report)."""
    results = []
    for route, metrics in latency_table(runs).items():
        for name in ("classification", "total"):
            if name in metrics:
                for q in ("p50", "p95"):
                    results.append({"key": f"latency_{name}_{q}_ms_{route}", "score": metrics[name][q]})
    return {"results": results}


def _tokens(usage: Any) -> tuple[int, int]:
    if not isinstance(usage, dict):
        return 0, 0
    return (
        int(usage.get("prompt_tokens", usage.get("input_tokens")) or 0),
        int(usage.get("completion_tokens", usage.get("output_tokens")) or 0),
    )


def cost_table(
    runs: Sequence[Any], input_price: float | None = None, output_price: float | None = None
) -> dict[str, Any]:
    """Cloud share and the estimated xAI cost (tokens × `EVAL_XAI_*_PRICE`, USD per million)."""
    settings = EvalSettings()
    input_price = settings.eval_xai_input_price if input_price is None else input_price
    output_price = settings.eval_xai_output_price if output_price is None else output_price
    cloud = 0
    by_route: dict[str, dict[str, float]] = {}
    tokens_in = tokens_out = 0
    for run in runs:
        out = _outputs(run)
        route = out.get("route") or "(none)"
        xai_steps = [s for s in out.get("steps") or [] if s.get("provider") == "xai"]
        if out.get("backend") == "xai" or xai_steps:
            cloud += 1
        entry = by_route.setdefault(route, {"runs": 0, "input_tokens": 0, "output_tokens": 0, "usd": 0.0})
        entry["runs"] += 1
        for step in xai_steps:
            prompt, completion = _tokens(step.get("usage"))
            entry["input_tokens"] += prompt
            entry["output_tokens"] += completion
            entry["usd"] += (prompt * input_price + completion * output_price) / 1e6
            tokens_in, tokens_out = tokens_in + prompt, tokens_out + completion
    total = sum(e["usd"] for e in by_route.values())
    return {
        "cloud_share": cloud / len(runs) if runs else None,
        "cloud_runs": cloud,
        "runs": len(runs),
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "usd": total,
        "by_route": by_route,
        "prices_usd_per_mtok": {"input": input_price, "output": output_price},
    }


def cloud_cost(runs: Sequence[Any], examples: Sequence[Any]) -> dict[str, Any]:
    """Share of runs served by xAI (or using its search) and their estimated cost in USD."""
    table = cost_table(runs)
    return {
        "results": [
            {
                "key": "cloud_share",
                "score": table["cloud_share"],
                "comment": f"{table['cloud_runs']}/{table['runs']} runs",
            },
            {
                "key": "xai_cost_usd",
                "score": table["usd"],
                "comment": f"{table['input_tokens']} input + {table['output_tokens']} output tokens",
            },
        ]
    }


def accuracy_summary(runs: Sequence[Any], examples: Sequence[Any]) -> dict[str, Any]:
    """Route accuracy over the labelled examples, as one number."""
    pairs = _labelled_pairs(runs, examples)
    right = sum(1 for got, ref in pairs if got == ref)
    return {
        "key": "route_accuracy_overall",
        "score": right / len(pairs) if pairs else None,
        "comment": f"{right}/{len(pairs)} labelled examples",
    }


def _mean(scores: list[int]) -> float | None:
    return sum(scores) / len(scores) if scores else None


def local_classifier_summary(runs: Sequence[Any], examples: Sequence[Any]) -> dict[str, Any]:
    """The local classifier in one replay: share decided locally, their accuracy, its time, agreement.

    `local_llm_agreement` compares, on the replay itself, the local prediction with the LLM
    classifier's decision where the local model did not decide (all of them in a shadow-mode
    replay); `shadow_agreement` does the same on the logged sessions (see `shadow_agreement`).
    """
    ran, right, replay_agree, logged_agree, ms = [], [], [], [], []
    for run, example in zip(runs, examples, strict=True):
        local = _local(run)
        if local is not None:
            ran.append(int(bool(local.get("decided"))))
            if local.get("ms") is not None:
                ms.append(float(local["ms"]))
            if local.get("decided") and (expected := _reference(example)) is not None:
                right.append(int(local.get("label") == expected))
            elif (
                not local.get("decided")
                and local.get("label")
                and _llm_decided(_outputs(run).get("route_reason"))
            ):
                replay_agree.append(int(local["label"] == _outputs(run).get("route")))
        if (score := shadow_agreement(run, example)["score"]) is not None:
            logged_agree.append(score)
    return {
        "results": [
            {
                "key": "local_share",
                "score": _mean(ran),
                "comment": f"{sum(ran)}/{len(ran)} classified requests",
            },
            {
                "key": "local_accuracy",
                "score": _mean(right),
                "comment": f"{sum(right)}/{len(right)} labelled",
            },
            {"key": "local_ms_p50", "score": percentile(ms, 50), "comment": f"{len(ms)} predictions"},
            {
                "key": "local_llm_agreement",
                "score": _mean(replay_agree),
                "comment": f"{sum(replay_agree)}/{len(replay_agree)} undecided in this replay",
            },
            {
                "key": "shadow_agreement",
                "score": _mean(logged_agree),
                "comment": f"{sum(logged_agree)}/{len(logged_agree)} logged sessions",
            },
        ]
    }


SUMMARY_EVALUATORS: list[Callable[[Sequence[Any], Sequence[Any]], dict[str, Any]]] = [
    accuracy_summary,
    meta_detection,
    latency,
    cloud_cost,
    local_classifier_summary,
]


def as_langsmith(
    results: Sequence[dict[str, Any]], examples: Sequence[dict[str, Any]]
) -> tuple[list[Run], list[Example]]:
    """Replay results and dataset rows as LangSmith's own `Run` and `Example` objects."""
    now = datetime.now(UTC)
    dataset_id = uuid.uuid5(uuid.NAMESPACE_URL, "ai-router-eval")
    runs, rows = [], []
    for result, example in zip(results, examples, strict=True):
        eid = uuid.uuid5(uuid.NAMESPACE_URL, str(example["metadata"]["example_id"]))
        rows.append(
            Example(
                id=eid,
                dataset_id=dataset_id,
                created_at=now,
                inputs=example["inputs"],
                outputs=example.get("outputs") or {},
                metadata=example.get("metadata") or {},
            )
        )
        run_id = uuid.uuid4()
        runs.append(
            Run(
                id=run_id,
                trace_id=run_id,
                name="ai-router replay",
                run_type="chain",
                start_time=now,
                inputs=example["inputs"],
                outputs=result,
                reference_example_id=eid,
            )
        )
    return runs, rows


@dataclass
class Evaluation:
    """What the evaluators said about one replay."""

    rows: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    """Per example, the row evaluators' results by key."""
    summary: dict[str, Any] = field(default_factory=dict)
    """The summary evaluators' scores by key."""


def evaluate_offline(results: Sequence[dict[str, Any]], examples: Sequence[dict[str, Any]]) -> Evaluation:
    """Run every evaluator over `results` (aligned with `examples`) without LangSmith's client."""
    runs, rows = as_langsmith(results, examples)
    evaluation = Evaluation()
    for run, example in zip(runs, rows, strict=True):
        evaluation.rows.append({r["key"]: r for r in (fn(run, example) for fn in ROW_EVALUATORS)})
    for summary in SUMMARY_EVALUATORS:
        outcome = summary(runs, rows)
        for item in outcome.get("results", [outcome]):
            evaluation.summary[item["key"]] = item.get("score")
    return evaluation


_SCORE = re.compile(r"SCORE\s*[:=]\s*([1-5])", re.I)


def make_answer_judge(ask: Callable[[list[dict[str, Any]]], str]) -> Callable[[Any, Any], dict[str, Any]]:
    """An LLM-as-judge evaluator of answer quality, with the rubric in `evals/prompts/judge.md`.

    Args:
        ask: Sends chat messages to the judging model and returns its text (see `evals.run`).

    Returns:
        A `(run, example)` evaluator with key `answer_quality`, scored 0-1 from the 1-5 grade.
    """
    from core.messages import last_user_text

    def answer_quality(run: Any, example: Any) -> dict[str, Any]:
        out = _outputs(run)
        if not out.get("answer"):
            return {"key": "answer_quality", "score": None, "comment": "no answer (routing-only replay?)"}
        messages = [
            {"role": "system", "content": EVAL_PROMPTS.render("judge")},
            {
                "role": "user",
                "content": EVAL_PROMPTS.render(
                    "judge_request",
                    query=last_user_text(getattr(example, "inputs", {}).get("messages") or []),
                    context=out.get("enrichment") or "(none)",
                    answer=out["answer"],
                ),
            },
        ]
        verdict = ask(messages)
        match = _SCORE.search(verdict or "")
        if match is None:
            return {
                "key": "answer_quality",
                "score": None,
                "comment": f"judge gave no score: {verdict[:120]!r}",
            }
        return {"key": "answer_quality", "score": (int(match.group(1)) - 1) / 4, "comment": verdict[:300]}

    return answer_quality
