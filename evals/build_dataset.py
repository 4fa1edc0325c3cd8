"""Turn session records (and their local traces) into an eval dataset in LangSmith's example shape.

    python -m evals.build_dataset build --out evals/datasets/sessions.jsonl [--since 1d] [--label ENRICH]
        [--route xai] [--until 2h] [--client OpenWebUI] [--errors] [--meta-only] [--labelled-only]
        [--no-dedup] [--labels logs/labels.json]
    python -m evals.build_dataset push evals/datasets/sessions.jsonl --name ai-router-sessions

Each line is `{"inputs": {"messages": [...]}, "outputs": {"route": <expected>}, "metadata": {...}}`:
`inputs` is the conversation as the client sent it (from the session's trace, else only the
logged last user message), `outputs` holds the expected route when a person labelled the
session (labels file, or feedback with `expected_route`), and `metadata` keeps what the router
decided at the time (`logged_route`, reason, classifier answer, timings, steps), so a replay can
say which decisions a change moved. Records written with `SESSION_LOG_CONTENT=none` hold no
text and are skipped; the current content setting caps what a dataset may hold.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from core.sessions.reading import is_synthetic, iter_records, mtime, parse_since
from core.sessions.reading import read_jsonl as read_trace
from core.settings import Settings
from evals.label import load_labels

Example = dict[str, Any]
"""One dataset row: `inputs`, `outputs`, `metadata`."""

_SKIPPABLE_REASONS = ("forced",)  # a forced route is no decision to judge


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file (blank lines ignored)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write `rows` to `path` as JSONL; return how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def trace_messages(trace_dir: Path | None, session_id: str) -> list[dict[str, Any]] | None:
    """The client's messages from the root run of a session's local trace, if there is one."""
    if trace_dir is None or not trace_dir.is_dir():
        return None
    for path in sorted(trace_dir.glob(f"*_{session_id}.jsonl"), reverse=True):
        for row in read_trace(path) or []:  # rotated away or half written: no conversation from it
            if row.get("parent_run_id") is None:
                messages = (row.get("inputs") or {}).get("messages")
                if isinstance(messages, list) and all(
                    isinstance(m, dict) and "content" in m for m in messages
                ):
                    return messages
    return None


def _clip(text: Any, limit: int | None) -> Any:
    if limit is None or not isinstance(text, str) or len(text) <= limit:
        return text
    return text[:limit] + f"[\u2026 {len(text) - limit} more chars]"


def _clip_messages(messages: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    if limit is None:
        return messages
    clipped = []
    for message in messages:
        item = dict(message)
        if isinstance(item.get("content"), str):
            item["content"] = _clip(item["content"], limit)
        elif isinstance(item.get("content"), list):
            item["content"] = [
                {**p, "text": _clip(p.get("text"), limit)} if isinstance(p, dict) and "text" in p else p
                for p in item["content"]
            ]
        clipped.append(item)
    return clipped


def step_summary(step: dict[str, Any]) -> dict[str, Any]:
    """What an evaluator needs of one logged backend call (no message text)."""
    return {
        "node": step.get("node"),
        "provider": step.get("provider"),
        "model": step.get("model"),
        "status": step.get("status"),
        "error": step.get("error"),
        "duration_ms": step.get("duration_ms"),
        "usage": step.get("usage"),
        "after_first_byte": step.get("after_first_byte"),
        "response_chars": len(step.get("response_content") or "") or step.get("response_chars") or 0,
    }


def expected_label(
    record: dict[str, Any], labels: dict[str, dict[str, Any]]
) -> tuple[str | None, float | None, str]:
    """(expected route, rating, where they came from): the labels file wins over feedback."""
    label = labels.get(record["session_id"]) or {}
    route, rating, source = label.get("expected_route"), label.get("rating"), "labels" if label else ""
    for feedback in reversed(record.get("feedback") or []):  # newest feedback first
        if route is None and feedback.get("expected_route"):
            route, source = feedback["expected_route"], source or "feedback"
        if rating is None and feedback.get("score") is not None:
            rating, source = feedback_rating(feedback["score"]), source or "feedback"
    return (route.upper() if isinstance(route, str) else None), rating, source


def feedback_rating(score: float) -> float:
    """A `/v1/feedback` score on the labels' 1-5 rating scale.

    Feedback takes thumbs (`-1` down, `1` up) or a 0-10 rating (`0`, `2`…`10`); ratings
    (`evals.label`) are 1 (bad) to 5 (good). Thumbs down is 1, thumbs up 5, and a 0-10 score
    maps linearly (0 → 1, 10 → 5).
    """
    if score == -1:
        return 1.0
    if score == 1:
        return 5.0
    return round(1 + 4 * max(0.0, min(10.0, score)) / 10, 1)


def record_to_example(
    record: dict[str, Any],
    messages: list[dict[str, Any]] | None,
    labels: dict[str, dict[str, Any]],
    limit: int | None,
) -> Example:
    """One session record as a dataset row."""
    history_from = "trace"
    if not messages:
        messages = [{"role": "user", "content": record.get("user_query") or ""}]
        history_from = "record (last user message only)"
    route, rating, label_source = expected_label(record, labels)
    steps = record.get("steps") or []
    answer = next((s.get("response_content") for s in reversed(steps) if s.get("node") == "generate"), None)
    metadata = {
        "example_id": record["session_id"],
        "session_id": record["session_id"],
        "timestamp": record.get("timestamp"),
        "endpoint": record.get("endpoint"),
        "client": (record.get("client") or {}).get("user_agent"),
        "client_task": (record.get("client") or {}).get("task"),
        "logged_route": record.get("route_label"),
        "logged_path": record.get("route"),
        "logged_reason": record.get("route_reason"),
        "logged_backend": record.get("backend"),
        "classification_raw": record.get("classification_raw"),
        "classification_ms": record.get("classification_ms"),
        # Shadow-mode agreement (local prediction vs the logged LLM decision) is measured on this.
        "logged_local_classification": record.get("local_classification"),
        "total_ms": record.get("total_ms"),
        "ttft_ms": record.get("ttft_ms"),
        "error": record.get("error"),
        "status_code": record.get("status_code"),
        "prompt_version": record.get("prompt_version"),
        "content_mode": record.get("content_mode"),
        "history_from": history_from,
        "enrichment": _clip(record.get("enrichment"), limit),
        "citations": record.get("citations") or [],
        "answer": _clip(answer, limit),
        "steps": [step_summary(s) for s in steps],
        "rating": rating,
        "label_source": label_source or None,
    }
    return {
        "inputs": {"messages": _clip_messages(messages, limit)},
        "outputs": {"route": route} if route else {},
        "metadata": metadata,
    }


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NOT_WORD = re.compile(r"[^\w\s]+")


def normalise(text: str) -> str:
    """Text reduced for near-duplicate detection: case, accents' forms, numbers, punctuation, spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _NUMBER.sub("0", text)
    return " ".join(_NOT_WORD.sub(" ", text).split())


def dedup_key(example: Example) -> str:
    """Near-identical queries share a key: the normalised last user turn and the user turn before it."""
    users = [m for m in example["inputs"]["messages"] if m.get("role") == "user"]
    texts = [_text(m) for m in users[-2:]]
    return "\x1f".join(normalise(t) for t in texts)


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def deduplicate(examples: list[Example]) -> list[Example]:
    """Keep one example per near-identical query: a labelled one first, else the newest.

    The kept row counts the others in `metadata.duplicates` and names them in
    `metadata.duplicate_ids`, so a frequent query still weighs as much in a review.
    """
    kept: dict[str, Example] = {}
    for example in examples:  # newest first
        key = dedup_key(example)
        current = kept.get(key)
        if current is None:
            kept[key] = {**example, "metadata": {**example["metadata"], "duplicates": 0, "duplicate_ids": []}}
            continue
        if example["outputs"] and not current["outputs"]:  # a labelled duplicate takes the place
            meta = current["metadata"]
            kept[key] = {
                **example,
                "metadata": {
                    **example["metadata"],
                    "duplicates": meta["duplicates"] + 1,
                    "duplicate_ids": [*meta["duplicate_ids"], meta["example_id"]],
                },
            }
            continue
        current["metadata"]["duplicates"] += 1
        current["metadata"]["duplicate_ids"].append(example["metadata"]["example_id"])
    return list(kept.values())


def build_examples(
    session_dir: Path,
    *,
    trace_dir: Path | None = None,
    labels: dict[str, dict[str, Any]] | None = None,
    filters: argparse.Namespace | None = None,
    content_ceiling: str = "full",
    truncate_chars: int = 2000,
    dedup: bool = True,
) -> tuple[list[Example], dict[str, int]]:
    """Build dataset rows from the records in `session_dir`; return them and what was skipped, by why.

    Args:
        session_dir: Folder of session records (`SESSION_LOG_DIR`).
        trace_dir: Folder of local traces, where the full conversation of each session is.
        labels: Expected routes and ratings by session id (`evals.label`).
        filters: `route`, `label`, `since`, `until` (epoch seconds), `errors`, `client`,
            `meta_only`, `labelled_only`, `include_dry_runs` (dry runs are left out by default:
            most are eval replays over HTTP); missing ones do not filter.
        content_ceiling: The current `SESSION_LOG_CONTENT`: a dataset never holds more text
            than it allows (`truncated` clips, `none` refuses).
        truncate_chars: Characters kept per text when the ceiling is `truncated`.
        dedup: Merge near-identical queries.

    Raises:
        ValueError: `content_ceiling` is `none`: a dataset without text cannot be replayed.
    """
    if content_ceiling == "none":
        raise ValueError(
            "SESSION_LOG_CONTENT=none: session text may not be kept, so no dataset can be built. "
            "Set it to truncated or full to collect replayable sessions."
        )
    limit = truncate_chars if content_ceiling == "truncated" else None
    args = argparse.Namespace(route=None, label=None, since=None, errors=False, client=None)
    if filters is not None:
        args.__dict__.update({k: v for k, v in vars(filters).items() if k in vars(args)})
    until = getattr(filters, "until", None)
    meta_only = getattr(filters, "meta_only", False)
    labelled_only = getattr(filters, "labelled_only", False)
    include_dry_runs = getattr(filters, "include_dry_runs", False)
    labels = labels or {}
    skipped: dict[str, int] = {}

    def skip(why: str) -> None:
        skipped[why] = skipped.get(why, 0) + 1

    examples: list[Example] = []
    for record in _records(session_dir, args, until):
        if is_synthetic(record):
            skip("synthetic (a test or benchmark)")
        elif record.get("endpoint") == "completions":
            skip("legacy completions (not routed)")
        elif record.get("content_mode") == "none" or record.get("user_query") is None:
            skip("no text logged (SESSION_LOG_CONTENT=none)")
        elif record.get("dry_run") and not include_dry_runs:
            skip("dry run (a routing test or an eval replay)")
        elif (record.get("route_reason") or "").startswith(_SKIPPABLE_REASONS):
            skip("forced route")
        elif meta_only and record.get("route_label") != "META":
            skip("not META")
        else:
            example = record_to_example(
                record, trace_messages(trace_dir, record["session_id"]), labels, limit
            )
            if labelled_only and not example["outputs"]:
                skip("not labelled")
                continue
            examples.append(example)
    if dedup:
        before = len(examples)
        examples = deduplicate(examples)
        if before > len(examples):
            skipped["near-duplicate (merged)"] = before - len(examples)
    return examples, skipped


def _records(folder: Path, args: argparse.Namespace, until: float | None) -> Iterator[dict[str, Any]]:
    for record in iter_records(folder, args):
        if until is not None:
            matches = list(folder.glob(f"*_{record['session_id']}.json"))
            modified = mtime(matches[0]) if matches else None
            if modified is None or modified > until:
                continue
        yield record


def push(path: Path, name: str) -> int:
    """Upload a dataset file to LangSmith as dataset `name` (created if missing); return examples sent."""
    from langsmith import Client

    client = Client()
    if client.has_dataset(dataset_name=name):
        dataset = client.read_dataset(dataset_name=name)
    else:
        dataset = client.create_dataset(name, description=f"ai-router eval dataset from {path.name}")
    rows = read_jsonl(path)
    client.create_examples(
        dataset_id=dataset.id,
        examples=[
            {"inputs": r["inputs"], "outputs": r.get("outputs") or {}, "metadata": r.get("metadata") or {}}
            for r in rows
        ],
    )
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the dataset command line."""
    settings = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m evals.build_dataset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="session records -> JSONL dataset")
    build.add_argument("--out", type=Path, required=True)
    build.add_argument("--dir", type=Path, default=Path(settings.session_log_dir), help="SESSION_LOG_DIR")
    build.add_argument("--traces", type=Path, default=Path(settings.trace_log_dir), help="TRACE_LOG_DIR")
    build.add_argument(
        "--labels", type=Path, default=Path(Settings().eval_labels_file), help="EVAL_LABELS_FILE"
    )
    build.add_argument("--route", help="backend path: meta, primary, xai, enrich")
    build.add_argument("--label", help="logged route label: SIMPLE, MODERATE, COMPLEX, ENRICH, META")
    build.add_argument("--since", type=parse_since, help="only sessions newer than 30m, 12h, 1d, 2w…")
    build.add_argument("--until", type=parse_since, help="only sessions older than 30m, 12h, 1d…")
    build.add_argument("--errors", action="store_true", help="only sessions that ended in an error")
    build.add_argument("--meta-only", action="store_true", help="only sessions routed META")
    build.add_argument("--client", help="only sessions whose user agent contains this")
    build.add_argument(
        "--labelled-only", action="store_true", help="only labelled sessions (the regression set)"
    )
    build.add_argument("--include-dry-runs", action="store_true", help="keep /api/route dry runs")
    build.add_argument("--no-dedup", action="store_true", help="keep near-identical queries")
    upload = commands.add_parser("push", help="upload a dataset file to LangSmith (needs LANGSMITH_API_KEY)")
    upload.add_argument("file", type=Path)
    upload.add_argument("--name", required=True)
    args = parser.parse_args(argv)

    if args.command == "push":
        if not (os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY")):
            print(
                "push needs LANGSMITH_API_KEY (and LANGSMITH_ENDPOINT for a self-hosted LangSmith).",
                file=sys.stderr,
            )
            return 2
        print(f"pushed {push(args.file, args.name)} examples to LangSmith dataset {args.name!r}")  # noqa: T201
        return 0
    try:
        examples, skipped = build_examples(
            args.dir,
            trace_dir=args.traces,
            labels=load_labels(args.labels),
            filters=args,
            content_ceiling=settings.session_log_content,
            truncate_chars=settings.session_log_truncate_chars,
            dedup=not args.no_dedup,
        )
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    count = write_jsonl(args.out, examples)
    labelled = sum(1 for e in examples if e["outputs"])
    print(f"wrote {count} examples ({labelled} labelled) to {args.out}; skipped: {skipped or 'none'}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
