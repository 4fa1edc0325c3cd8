"""Run an eval: replay a dataset through the current graph, judge it, write the report.

    python -m evals.run                                   # `make eval`: the regression set, routing only
    python -m evals.run --gate                            # exit 1 when accuracy drops below the baseline,
                                                          # or the cascade below LLM-only accuracy
    python -m evals.run --dataset evals/datasets/sessions.jsonl --mode full --judge
    python -m evals.run --router http://127.0.0.1:8000    # replay over HTTP against a running router
    python -m evals.run --save-baseline                   # make this run the baseline
    python -m evals.run --langsmith ai-router-regression  # the same evaluators through langsmith.evaluate

With the local classifier on (`LOCAL_CLASSIFIER=on`, the default) the dataset is replayed a
second time with `LOCAL_CLASSIFIER=off` (LLM-only, under `<out>/llm_only/`), and the report's
"Cascade" section compares the two (`evals.cascade`); `--no-llm-only` skips that arm.

Backends come from the settings (environment, `.env`), as for the router. With none configured
(`PRIMARY_BASE_URL` unset) and `--simulator auto`, the embedded backend simulator is started,
as `make run` does, so the command works on a laptop; its classifier is a keyword heuristic,
so the accuracy it gives measures the pipeline, not a model.

Exit codes: 0 done, 1 the gate failed, 2 bad usage (no dataset, no baseline for the gate).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pydantic import SecretStr

from core.settings import Settings
from evals.build_dataset import read_jsonl
from evals.cascade import cascade_gate, cascade_section
from evals.evaluators import (
    ROW_EVALUATORS,
    SUMMARY_EVALUATORS,
    Evaluation,
    evaluate_offline,
    make_answer_judge,
)
from evals.replay import Mode, replay, run_in_process
from evals.report import write_report
from evals.settings import EvalSettings

EVALS_DIR = Path(__file__).resolve().parent
REGRESSION_SET = EVALS_DIR / "datasets" / "routing_regression.jsonl"
BASELINES = EVALS_DIR / "baselines"


def default_baseline(dataset: Path) -> Path:
    """Where the baseline of `dataset` is kept: `evals/baselines/<dataset name>.json`."""
    return BASELINES / f"{dataset.stem}.json"


_simulator: dict[str, str] = {}  # the embedded simulator this process started, if any


def ensure_backends(choice: str, router_url: str | None, settings: Settings) -> tuple[Settings, str | None]:
    """Start the embedded simulator when asked to, or when no backend is configured.

    Returns the settings to replay with (pointed at the simulator when it was started) and
    the simulator's URL, if any.
    """
    if router_url is not None or choice == "off":
        return settings, None
    if choice == "auto" and "primary_base_url" in settings.model_fields_set:
        return settings, None
    from tools.launch import SIM_XAI_KEY, start_simulator

    os.environ.setdefault("SIM_TOKEN_DELAY_MS", "0")  # evals want answers, not a typing effect
    url = start_simulator(settings.classifier_model)
    _simulator["url"] = url
    key = settings.xai_api_key if settings.xai_configured else SecretStr(SIM_XAI_KEY)
    simulated = settings.model_copy(
        update={"primary_base_url": url, "classifier_base_url": url, "xai_base_url": url, "xai_api_key": key}
    )
    return simulated, url


def replay_settings(settings: Settings | None = None, **overrides: Any) -> Settings:
    """The router settings a replay runs with: `settings` (default: the environment's), with
    `overrides`, and no decision cache unless one is configured (a replay measures the classifier)."""
    settings = settings or Settings()
    if "route_cache_size" not in settings.model_fields_set:
        overrides.setdefault("route_cache_size", 0)
    return settings.model_copy(update=overrides) if overrides else settings


def judge_caller(settings: Settings) -> Any:
    """A synchronous `ask(messages) -> text` on the primary backend, for the LLM judge."""
    key = settings.primary_api_key.get_secret_value() if settings.primary_api_key else None
    client = httpx.Client(
        base_url=settings.primary_base_url.rstrip("/"),
        timeout=settings.primary_timeout_s,
        headers={"Authorization": f"Bearer {key}"} if key else {},
    )

    def ask(messages: list[dict[str, Any]]) -> str:
        answer = client.post(
            "/chat/completions",
            json={"model": settings.primary_model, "messages": messages, "temperature": 0, "max_tokens": 200},
        )
        answer.raise_for_status()
        return answer.json()["choices"][0]["message"].get("content") or ""

    return ask


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is under it (reports stay portable)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run_config(dataset: Path, mode: Mode, router_url: str | None, settings: Settings) -> dict[str, Any]:
    """The knobs of a run, kept in its summary (and LangSmith experiment metadata)."""
    from prompts import PromptLibrary

    return {
        "dataset": _shown(dataset),
        "mode": mode,
        "router": router_url or "in-process",
        "backends": "embedded simulator (keyword classifier)" if _simulator else "configured",
        "classifier_model": settings.classifier_model,
        "local_classifier": settings.local_classifier if router_url is None else "the router's",
        "classifier_base_url": settings.classifier_base_url,
        "primary_model": settings.primary_model,
        "xai_model": settings.xai_model if settings.xai_configured else None,
        "prompts_dir": settings.prompts_dir or "prompts/",
        "prompts_digest": PromptLibrary.at(settings.prompts_dir).digest[:16],
    }


def run_eval(
    dataset: Path,
    out_dir: Path,
    *,
    mode: Mode = "routing",
    router_url: str | None = None,
    settings: Settings | None = None,
    concurrency: int | None = None,
    baseline: Path | None = None,
    resume: bool = False,
    judge: bool = False,
    progress: bool = True,
    session_dir: Path | None = None,
    llm_only: bool = False,
    llm_only_router: str | None = None,
) -> dict[str, Any]:
    """Replay `dataset`, evaluate it and write the report into `out_dir`; return the summary.

    With `llm_only` and a replay the local classifier decided in, the dataset is replayed again
    with `LOCAL_CLASSIFIER=off` (in-process), or against `llm_only_router` (over HTTP), and the
    summary gets a `cascade` section comparing the two. `settings` are the router's for an
    in-process replay (default: the environment's, without a decision cache).
    """
    settings = replay_settings(settings)
    concurrency = concurrency or EvalSettings().eval_concurrency
    examples = read_jsonl(dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "results.jsonl"
    if not resume:
        results_path.unlink(missing_ok=True)
    config = run_config(dataset, mode, router_url, settings)
    results = asyncio.run(
        replay(
            examples,
            mode=mode,
            router_url=router_url,
            settings=settings,
            concurrency=concurrency,
            results_path=results_path,
            progress=progress,
        )
    )
    evaluation = evaluate_offline(results, examples)
    if judge:
        evaluation = _judge(evaluation, results, examples, settings)
    llm_results, note = None, "not asked for (--no-llm-only)"
    if llm_only and any((r.get("local_classification") or {}).get("decided") for r in results):
        llm_results, note = _llm_only_arm(
            examples, out_dir / "llm_only", mode, router_url, llm_only_router, settings, concurrency, resume,
            progress,
        )
    elif llm_only:
        note = "the local classifier decided nothing in this replay (shadow mode?): its routes are the LLM's"
    cascade = cascade_section(
        examples,
        results,
        llm_results,
        model_path=settings.local_classifier_model_path,
        budget=settings.classify_context_budget,
        llm_only_note=note,
    )
    saved = json.loads(baseline.read_text()) if baseline is not None and baseline.is_file() else None
    if session_dir is None:
        session_dir = Path(settings.session_log_dir)
    return write_report(out_dir, examples, results, evaluation, config, saved, session_dir, cascade=cascade)


def _llm_only_arm(
    examples: list[dict[str, Any]],
    out_dir: Path,
    mode: Mode,
    router_url: str | None,
    llm_only_router: str | None,
    settings: Settings,
    concurrency: int,
    resume: bool,
    progress: bool,
) -> tuple[list[dict[str, Any]] | None, str | None]:
    """Replay `examples` with the LLM classifier alone; return the results, or None and why not."""
    if router_url is not None and llm_only_router is None:
        return None, "replayed over HTTP: pass --llm-only-router URL (a router with LOCAL_CLASSIFIER=off)"
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "results.jsonl"
    if not resume:
        results_path.unlink(missing_ok=True)
    results = asyncio.run(
        replay(
            examples,
            mode=mode,
            router_url=llm_only_router if router_url is not None else None,
            settings=settings.model_copy(update={"local_classifier": "off"}),
            concurrency=concurrency,
            results_path=results_path,
            progress=progress,
        )
    )
    return results, None


def _judge(
    evaluation: Evaluation, results: list[dict[str, Any]], examples: list[dict[str, Any]], settings: Settings
) -> Evaluation:
    from evals.evaluators import as_langsmith

    answer_quality = make_answer_judge(judge_caller(settings))
    runs, rows = as_langsmith(results, examples)
    scores = []
    for row, run, example in zip(evaluation.rows, runs, rows, strict=True):
        row["answer_quality"] = answer_quality(run, example)
        if row["answer_quality"]["score"] is not None:
            scores.append(row["answer_quality"]["score"])
    evaluation.summary["answer_quality"] = sum(scores) / len(scores) if scores else None
    return evaluation


def gate(summary: dict[str, Any], margin: float) -> tuple[bool, str]:
    """Whether accuracy is within `margin` of the baseline's, and a sentence saying so."""
    base = summary.get("baseline")
    now = summary["metrics"].get("route_accuracy_overall")
    if not base or base.get("accuracy") is None or now is None:
        return False, "no baseline accuracy to compare with (run once with --save-baseline)"
    ok = now >= base["accuracy"] - margin
    verdict = "within" if ok else "below"
    return ok, (
        f"accuracy {now:.3f} vs baseline {base['accuracy']:.3f}: {verdict} the margin of {margin:.3f}"
    )


class _LoopThread:
    """An event loop on its own thread, so synchronous callers (langsmith.evaluate) can run the graph."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()


def make_target(mode: Mode = "routing", settings: Settings | None = None) -> Any:
    """A `langsmith.evaluate` target: `inputs -> replay result`, the graph run in-process.

    LangChain tracing is switched off inside the target (STACK-NOTES: with
    `upload_results=False` it would still try to upload child runs).
    """
    import langsmith

    runner = _LoopThread()
    services = runner.run(_build_services(replay_settings(settings)))

    def ai_router_replay(inputs: dict[str, Any]) -> dict[str, Any]:
        with langsmith.tracing_context(enabled=False):
            example = {"inputs": inputs, "metadata": {"example_id": "langsmith"}}
            return runner.run(run_in_process(example, mode, services))

    return ai_router_replay


async def _build_services(settings: Settings) -> Any:
    from core.services import build_services

    return build_services(settings)  # on the runner's loop: the backend clients belong to it


def main(argv: list[str] | None = None) -> int:
    """Run the eval command line."""
    settings, eval_settings = Settings(), EvalSettings()
    parser = argparse.ArgumentParser(
        prog="python -m evals.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=REGRESSION_SET)
    parser.add_argument("--mode", choices=["routing", "full"], default="routing")
    parser.add_argument("--router", help="replay over HTTP against this running router (base URL)")
    parser.add_argument("--out", type=Path, help="report folder (default logs/evals/<time>)")
    parser.add_argument("--concurrency", type=int, default=eval_settings.eval_concurrency, help="EVAL_CONCURRENCY")
    parser.add_argument("--resume", action="store_true", help="reuse the results already in --out")
    parser.add_argument(
        "--baseline", type=Path, help="baseline summary (default evals/baselines/<dataset>.json)"
    )
    parser.add_argument("--save-baseline", action="store_true", help="save this run as the baseline")
    parser.add_argument("--gate", action="store_true", help="exit 1 when accuracy < baseline - margin")
    parser.add_argument("--margin", type=float, default=eval_settings.eval_margin, help="EVAL_MARGIN")
    parser.add_argument(
        "--cascade-margin",
        type=float,
        default=eval_settings.eval_cascade_margin,
        help="EVAL_CASCADE_MARGIN: --gate fails when the cascade is below LLM-only accuracy by more",
    )
    parser.add_argument(
        "--no-llm-only",
        action="store_true",
        help="skip the LLM-only replay (LOCAL_CLASSIFIER=off) of the cascade",
    )
    parser.add_argument(
        "--llm-only-router", help="with --router: a router with LOCAL_CLASSIFIER=off, for the LLM-only replay"
    )
    parser.add_argument("--judge", action="store_true", help="grade answers with the LLM judge (full mode)")
    parser.add_argument(
        "--simulator", choices=["auto", "on", "off"], default=os.environ.get("SIMULATOR", "auto")
    )
    parser.add_argument("--prompts-dir", help="evaluate the prompts in this folder (PROMPTS_DIR)")
    parser.add_argument(
        "--langsmith",
        metavar="DATASET",
        help="run through langsmith.evaluate on this "
        "LangSmith dataset and upload the experiment (needs LANGSMITH_API_KEY)",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    if not args.dataset.is_file():
        print(
            f"no dataset at {args.dataset} (python -m evals.build_regression_set writes the regression set)",
            file=sys.stderr,
        )
        return 2
    router_settings = replay_settings(
        settings, **({"prompts_dir": str(Path(args.prompts_dir).resolve())} if args.prompts_dir else {})
    )
    router_settings, sim = ensure_backends(args.simulator, args.router, router_settings)
    if sim:
        print(
            f"no backend configured: using the embedded simulator at {sim} (a keyword classifier)",
            file=sys.stderr,
        )
    if args.langsmith:
        return _run_langsmith(args, router_settings)
    baseline = args.baseline or default_baseline(args.dataset)
    if args.gate and not baseline.is_file():
        print(f"--gate needs a baseline at {baseline}; run once with --save-baseline", file=sys.stderr)
        return 2
    out = args.out or Path("logs/evals") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    summary = run_eval(
        args.dataset,
        out,
        mode=args.mode,
        router_url=args.router,
        settings=router_settings,
        concurrency=args.concurrency,
        baseline=baseline,
        resume=args.resume,
        judge=args.judge,
        progress=not args.no_progress,
        llm_only=not args.no_llm_only,
        llm_only_router=args.llm_only_router,
    )
    metrics = summary["metrics"]
    print(
        f"{summary['examples']} examples, accuracy {metrics.get('route_accuracy_overall')}, "  # noqa: T201
        f"META precision/recall {metrics.get('meta_precision')}/{metrics.get('meta_recall')}, "
        f"changed vs logged {len(summary['changed_vs_logged'])}; report: {out / 'report.html'}"
    )
    if args.save_baseline:
        baseline.parent.mkdir(parents=True, exist_ok=True)
        baseline.write_text((out / "summary.json").read_text())
        print(f"saved as baseline {baseline}")  # noqa: T201
    cascade = summary.get("cascade")
    if cascade is not None:
        llm = cascade.get("llm_only") or {}
        print(  # noqa: T201
            f"cascade: {cascade['local_share']:.1%} decided locally, "
            f"{_pct(cascade['local_accuracy'])} of those right; "
            f"accuracy {_pct(cascade['cascade']['accuracy'])} vs LLM-only {_pct(llm.get('accuracy'))}"
            + (" (in-sample: the model was trained on these examples)" if cascade.get("in_sample") else "")
        )
    if args.gate:
        ok, sentence = gate(summary, args.margin)
        print(("gate passed: " if ok else "gate FAILED: ") + sentence)  # noqa: T201
        cascade_ok, cascade_sentence = cascade_gate(cascade, args.cascade_margin)
        print(("cascade gate passed: " if cascade_ok else "cascade gate FAILED: ") + cascade_sentence)  # noqa: T201
        return 0 if ok and cascade_ok else 1
    return 0


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _run_langsmith(args: argparse.Namespace, settings: Settings) -> int:
    if not (os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY")):
        print("--langsmith needs LANGSMITH_API_KEY; without it, run offline (the default).", file=sys.stderr)
        return 2
    from langsmith.evaluation import evaluate

    results = evaluate(
        make_target(args.mode, settings),
        data=args.langsmith,
        evaluators=ROW_EVALUATORS,
        summary_evaluators=SUMMARY_EVALUATORS,
        experiment_prefix="ai-router",
        metadata=run_config(args.dataset, args.mode, None, settings),
        max_concurrency=args.concurrency,
    )
    print(f"LangSmith experiment: {results.experiment_name}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
