"""Look at session records: list, show, filter, export for evals, upload traces.

    python -m tools.sessions list [--route xai] [--label COMPLEX] [--since 1d] [--errors] [--limit 20]
    python -m tools.sessions show SESSION_ID
    python -m tools.sessions export --out sessions.jsonl [filters]
    python -m tools.sessions upload-traces [--since 7d]      # needs LANGSMITH_API_KEY
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from core.sessions.reading import iter_records, mtime, parse_since, read_record
from core.settings import Settings


def _when(timestamp: str) -> str:
    """The record's time to the second, with its UTC offset (TZ decides which)."""
    try:
        return datetime.fromisoformat(timestamp).isoformat(timespec="seconds")
    except ValueError:
        return timestamp


def _line(record: dict[str, Any]) -> str:
    # The whole id: it is what /v1/feedback and `show` take (a unique prefix works too).
    query = (record.get("user_query") or "").replace("\n", " ")
    flag = " ERROR" if record.get("error") else ""
    return (f"{_when(record['timestamp'])}  {record['session_id']}  {record.get('route_label') or '-':<9} "
            f"{record.get('route'):<8} {record.get('total_ms', 0):>8.1f} ms{flag}  {query[:60]}")


def cmd_list(args: argparse.Namespace, folder: Path) -> int:
    shown = 0
    for record in iter_records(folder, args):
        print(_line(record))
        shown += 1
        if shown >= args.limit:
            break
    if not shown:
        print(f"no sessions in {folder} match", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace, folder: Path) -> int:
    matches = sorted(folder.glob(f"*_{glob.escape(args.session_id)}*.json"))
    ids = {path.stem.split("_", 1)[-1] for path in matches}
    if len(ids) > 1:
        print(f"{args.session_id!r} is the start of {len(ids)} session ids: give more of the id", file=sys.stderr)
        return 1
    record = read_record(matches[-1]) if matches else None
    if record is None:
        print(f"no session {args.session_id!r} in {folder}", file=sys.stderr)
        return 1
    print(_line(record))
    for key in ("route_reason", "classification_raw", "classification_ms", "total_ms", "ttft_ms", "error",
                "served_model", "prompt_version", "trace_id"):
        print(f"  {key:<19} {record.get(key)}")
    print(f"  client              {record.get('client')}")
    print(f"  params              {json.dumps(record.get('params'))[:200]}")
    for index, step in enumerate(record.get("steps") or [], 1):
        status = step["status"] + (f" ({step['error']})" if step.get("error") else "")
        print(f"\n  step {index}: {step['node']} -> {step['provider']} {step['model']} "
              f"[{step['duration_ms']} ms, {status}]")
        print(f"    url: {step['url']}  usage: {step.get('usage')}")
        for message in step.get("messages_sent") or []:
            content = message.get("content") if isinstance(message, dict) else message
            text = content if isinstance(content, str) else json.dumps(content)
            print(f"    > {message.get('role', '?') if isinstance(message, dict) else ''}: {(text or '')[:300]}")
        if step.get("response_content"):
            print(f"    < {step['response_content'][:600]}")
    for feedback in record.get("feedback") or []:
        print(f"\n  feedback: {feedback}")
    return 0


def cmd_export(args: argparse.Namespace, folder: Path) -> int:
    out = Path(args.out)
    count = 0
    with out.open("w") as handle:
        for record in iter_records(folder, args):
            handle.write(json.dumps(record) + "\n")
            count += 1
    print(f"exported {count} sessions to {out}")
    return 0


def cmd_upload(args: argparse.Namespace, settings: Settings) -> int:
    if not (os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY")):
        print("upload-traces needs LANGSMITH_API_KEY (and LANGSMITH_ENDPOINT for a self-hosted LangSmith).",
              file=sys.stderr)
        return 2
    from core.sessions.traces import upload

    folder = Path(settings.trace_log_dir)
    traces = []
    unfinished = 0
    for path in sorted(folder.glob("*.jsonl")):
        modified = mtime(path)
        if modified is None or (args.since and modified < args.since):
            continue  # rotated away since the listing, or too old
        try:
            text = path.read_text()
        except OSError:
            continue  # rotated away since the listing
        try:
            traces.append([json.loads(line) for line in text.splitlines() if line.strip()])
        except json.JSONDecodeError:  # a running router is still writing it: the next upload takes it
            unfinished += 1
    sent = upload(traces)
    skipped = f", {unfinished} still being written skipped" if unfinished else ""
    print(f"uploaded {len(traces)} traces ({sent} runs) from {folder}{skipped}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the sessions command line."""
    settings = Settings()
    parser = argparse.ArgumentParser(prog="python -m tools.sessions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=settings.session_log_dir, help="session folder (SESSION_LOG_DIR)")
    commands = parser.add_subparsers(dest="command", required=True)

    def filters(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--route", help="backend path: meta, primary, xai, enrich, router")
        sub.add_argument("--label", help="route label: SIMPLE, MODERATE, COMPLEX, ENRICH, META, …")
        sub.add_argument("--since", type=parse_since, help="only the last 30m, 12h, 1d, 2w…")
        sub.add_argument("--errors", action="store_true", help="only sessions that ended in an error")
        sub.add_argument("--client", help="only sessions whose user agent contains this")

    listing = commands.add_parser("list", help="recent sessions, one line each")
    filters(listing)
    listing.add_argument("--limit", type=int, default=20)
    show = commands.add_parser("show", help="one session in full, steps in order")
    show.add_argument("session_id")
    export = commands.add_parser("export", help="a filtered set as JSONL (for evals)")
    filters(export)
    export.add_argument("--out", required=True)
    upload = commands.add_parser("upload-traces", help="send local traces to LangSmith")
    upload.add_argument("--since", type=parse_since)

    args = parser.parse_args(argv)
    folder = Path(args.dir)
    if args.command == "list":
        return cmd_list(args, folder)
    if args.command == "show":
        return cmd_show(args, folder)
    if args.command == "export":
        return cmd_export(args, folder)
    return cmd_upload(args, settings)


def run() -> int:
    """`main`, quiet when the reader of its output goes away (`sessions list | head`)."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's documented recipe: point stdout at /dev/null so the exit flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(run())
