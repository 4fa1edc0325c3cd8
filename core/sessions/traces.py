"""Turn a finished request into a LangSmith-format run tree, and upload local traces later.

The tree is built with langsmith's own `RunTree` after the request, in the writer thread,
from timings recorded while the graph ran: the root run (the graph), one child per node
that ran, and under each node one `llm` child per backend call it made, with its inputs,
outputs, token usage and error. Doing this off the request path keeps LangChain's callback
machinery (about a millisecond a request here) off the hot path; with
`LANGSMITH_TRACING=true` and a key, LangGraph's own tracer also sends runs live, as usual.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from langsmith.run_trees import RunTree

from core.sessions.record import SessionData, shape_messages


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _usage_metadata(usage: Any) -> dict[str, Any] | None:
    """OpenAI `usage` as LangSmith's `usage_metadata`, which its UI counts tokens from."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens", usage.get("input_tokens")) or 0
    completion = usage.get("completion_tokens", usage.get("output_tokens")) or 0
    return {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}


def build_run_tree(data: SessionData, record: dict[str, Any], mode: str, limit: int) -> RunTree:
    """The run tree of one request (root, nodes, model calls)."""
    start = data.started_at
    end = start + data.total_ms / 1000
    body = data.body if isinstance(data.body, dict) else {}
    root = RunTree(
        id=data.trace_id,
        name="ai-router",
        run_type="chain",
        start_time=_at(start),
        inputs={"messages": shape_messages(body.get("messages"), mode, limit)},
        extra={"metadata": {
            "session_id": data.session_id, "endpoint": data.endpoint, "dry_run": data.dry_run,
            "prompt_version": data.prompt_version,
        }},
        tags=[f"route:{record.get('route_label')}", f"path:{record.get('route')}"],
    )
    steps = record.get("steps") or []
    node_start = start
    used: set[int] = set()
    for name, finished, update in data.node_times:
        node = root.create_child(name=name, run_type="chain", start_time=_at(node_start), inputs={})
        for index, step in enumerate(steps):
            if index in used or step.get("node") != name:
                continue
            used.add(index)
            _add_model_call(node, step)
        outputs = {k: v for k, v in (update or {}).items() if k not in ("steps", "response", "enrichment")}
        node.end(outputs=outputs, end_time=_at(max(finished, node_start)))
        node_start = finished
    for index, step in enumerate(steps):  # calls of a node that never reported (it crashed)
        if index not in used:
            _add_model_call(root, step)
    root.end(
        outputs={
            "route": record.get("route_label"),
            "route_reason": record.get("route_reason"),
            "backend": record.get("backend"),
            "served_model": record.get("served_model"),
        },
        error=data.error,
        end_time=_at(end),
    )
    return root


def _add_model_call(parent: RunTree, step: dict[str, Any]) -> None:
    started = step.get("started_at") or parent.start_time.timestamp()
    call = parent.create_child(
        name=f"{step.get('provider')}:{step.get('model')}",
        run_type="llm",
        start_time=_at(started),
        inputs={"messages": step.get("messages_sent"), "url": step.get("url")},
        extra={"invocation_params": {"model": step.get("model")}, "metadata": {"ls_provider": step.get("provider")}},
    )
    call.end(
        outputs={
            "content": step.get("response_content"),
            "reasoning_content": step.get("reasoning_content"),
            "served_model": step.get("served_model"),
            "usage_metadata": _usage_metadata(step.get("usage")),
        },
        error=step.get("error"),
        end_time=_at(started + (step.get("duration_ms") or 0) / 1000),
    )


def flatten(root: RunTree) -> list[dict[str, Any]]:
    """The tree as flat rows, parents first: exactly what LangSmith's batch ingest takes."""
    rows: list[dict[str, Any]] = []
    pending = [root]
    while pending:
        run = pending.pop(0)
        row = run.model_dump(mode="json", exclude={"child_runs", "parent_run", "client", "ls_client"})
        rows.append(row)
        pending.extend(run.child_runs)
    return rows


def upload(rows_by_trace: list[list[dict[str, Any]]]) -> int:
    """Send local traces to LangSmith (`LANGSMITH_API_KEY`, `LANGSMITH_ENDPOINT`); return runs sent."""
    from langsmith import Client

    client = Client()
    sent = 0
    for rows in rows_by_trace:  # one trace per call, as the batch endpoint expects
        client.batch_ingest_runs(create=rows)
        sent += len(rows)
    client.flush() if hasattr(client, "flush") else None
    return sent
