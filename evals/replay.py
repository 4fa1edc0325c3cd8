"""Replay a dataset through the current graph: routing only (dry run) or full generation.

In-process (default) the compiled graph of `graph.build` runs with LangGraph's own API,
`graph.ainvoke({"messages": …}, context=RouterContext(dry_run=True))`, on the backends the
settings name. With `router_url` the same replay goes over HTTP to a running router:
`/api/route` with `dry_run: true`, or `/v1/chat/completions` for full generation.

Results are appended to a JSONL file, one row per example as it finishes, so an interrupted
replay resumes where it stopped (rows already there are skipped). At most `concurrency`
examples are in flight; a tqdm bar shows progress.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Literal

import httpx
from tqdm import tqdm

from core.context import RouterContext
from core.services import Services, build_services
from core.settings import Settings
from core.state import decision_of

Mode = Literal["routing", "full"]
Result = dict[str, Any]


def example_id(example: dict[str, Any]) -> str:
    """The stable id of a dataset row."""
    return str(example["metadata"]["example_id"])


def load_done(path: Path | None) -> dict[str, Result]:
    """Results already in `path`, by example id (what a resumed replay skips)."""
    if path is None or not path.is_file():
        return {}
    done: dict[str, Result] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut by an interrupted run: redo that example
                continue
            done[row["example_id"]] = row
    return done


def _steps(steps: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [
        {
            "node": s.get("node"),
            "provider": s.get("provider"),
            "model": s.get("model"),
            "status": s.get("status"),
            "error": s.get("error"),
            "duration_ms": s.get("duration_ms"),
            "usage": s.get("usage"),
            "after_first_byte": s.get("after_first_byte"),
            "response_chars": len(s.get("response_content") or ""),
        }
        for s in steps or []
    ]


def result_from_state(eid: str, state: dict[str, Any], total_ms: float, mode: Mode) -> Result:
    """One result row from a graph run's output state."""
    response = state.get("response") or {}
    choices = response.get("choices") or [{}]
    message = choices[0].get("message") or {}
    return {
        "example_id": eid,
        "mode": mode,
        # The decision, with the local classifier's prediction (label, probability, decided, ms, …)
        # that the cascade metrics read.
        **decision_of(state),
        "total_ms": round(total_ms, 3),
        "steps": _steps(state.get("steps")),
        "enrichment": state.get("enrichment"),
        "citations": state.get("citations") or [],
        "answer": message.get("content"),
        "finish_reason": choices[0].get("finish_reason"),
        "error": (state.get("error") or {}).get("message"),
    }


async def run_in_process(example: dict[str, Any], mode: Mode, services: Services) -> Result:
    """Run one example through the compiled graph in this process (a dry run unless `mode` is full)."""
    from graph.build import graph  # the graph module compiles on import: only in-process replays pay for it

    started = time.perf_counter()
    state = await graph.ainvoke(
        {"messages": example["inputs"]["messages"], "params": {}},
        context=RouterContext.from_settings(services.settings, services, dry_run=mode == "routing"),
    )
    return result_from_state(example_id(example), state, (time.perf_counter() - started) * 1000, mode)


async def _run_over_http(client: httpx.AsyncClient, example: dict[str, Any], mode: Mode) -> Result:
    eid = example_id(example)
    body: dict[str, Any] = {"model": "ai-router", "messages": example["inputs"]["messages"]}
    started = time.perf_counter()
    if mode == "routing":
        response = await client.post("/api/route", json={**body, "dry_run": True})
        response.raise_for_status()
        decision = response.json()
        return {
            **result_from_state(
                eid,
                {**decision, "route": decision.get("route_label")},
                (time.perf_counter() - started) * 1000,
                mode,
            ),
            "session_id": decision.get("session_id"),
        }
    response = await client.post("/v1/chat/completions", json=body)
    total_ms = (time.perf_counter() - started) * 1000
    headers = response.headers
    state: dict[str, Any] = {
        "route": headers.get("x-ai-router-route"),
        "route_reason": headers.get("x-ai-router-reason"),
        "backend": headers.get("x-ai-router-backend"),
    }
    if response.status_code == 200:
        state["response"] = response.json()
    else:
        state["error"] = {"message": response.text[:500]}
    return {**result_from_state(eid, state, total_ms, mode), "session_id": headers.get("x-session-id")}


async def replay(
    examples: list[dict[str, Any]],
    *,
    mode: Mode = "routing",
    router_url: str | None = None,
    settings: Settings | None = None,
    concurrency: int = 8,
    results_path: Path | None = None,
    progress: bool = True,
) -> list[Result]:
    """Replay `examples`; return one result per example, in the dataset's order.

    Args:
        examples: Dataset rows (`inputs.messages`, `metadata.example_id`).
        mode: `routing` stops at the decision (no generation); `full` generates.
        router_url: Replay over HTTP against this running router instead of in-process.
        settings: The router's settings for an in-process replay (default: the environment's).
        concurrency: Examples in flight at most.
        results_path: JSONL file results are appended to; rows already there are reused.
        progress: Show a progress bar (on stderr).
    """
    done = load_done(results_path)
    todo = [e for e in examples if example_id(e) not in done]
    semaphore = asyncio.Semaphore(max(1, concurrency))
    handle = results_path.open("a", encoding="utf-8") if results_path else None
    client = httpx.AsyncClient(base_url=router_url.rstrip("/"), timeout=600) if router_url else None
    services = build_services(settings or Settings()) if client is None else None
    bar = tqdm(
        total=len(examples),
        initial=len(examples) - len(todo),
        disable=not progress,
        desc=f"replay ({mode})",
        unit="ex",
    )

    async def one(example: dict[str, Any]) -> None:
        async with semaphore:
            try:
                if client is not None:
                    result = await _run_over_http(client, example, mode)
                else:
                    assert services is not None
                    result = await run_in_process(example, mode, services)
            # One broken example must not end a replay of hundreds: record why and go on.
            except Exception as error:  # noqa: BLE001
                result = {
                    "example_id": example_id(example),
                    "mode": mode,
                    "route": None,
                    "steps": [],
                    "error": f"{type(error).__name__}: {error}"[:500],
                    "total_ms": None,
                }
        done[result["example_id"]] = result
        if handle is not None:
            handle.write(json.dumps(result, ensure_ascii=False) + "\n")
            handle.flush()
        bar.update(1)

    try:
        await asyncio.gather(*(one(e) for e in todo))
    finally:
        bar.close()
        if handle is not None:
            handle.close()
        if client is not None:
            await client.aclose()
        if services is not None:
            await services.aclose()  # the pooled clients belong to this event loop
    return [done[example_id(e)] for e in examples if example_id(e) in done]
