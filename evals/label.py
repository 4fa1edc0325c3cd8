"""Label sessions with the route they should have taken and a rating, in the terminal.

    python -m evals.label                        # walk unlabelled recent sessions, one at a time
    python -m evals.label --since 1d --label MODERATE
    python -m evals.label set SESSION_ID --route ENRICH [--rating 2] [--comment "needed today's price"]
    python -m evals.label show                   # every label in the file

Labels live in one JSON file keyed by session id (`EVAL_LABELS_FILE`, default
`logs/labels.json`; `core.sessions.labels` reads and writes it, as the review desk does).
`evals.build_dataset` turns labelled sessions into the regression set.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from core.routes import ROUTES
from core.sessions.labels import load_labels, save_labels, set_label
from core.sessions.reading import is_synthetic, iter_records, parse_since
from core.settings import Settings

SHORTCUTS = {"s": "SIMPLE", "m": "MODERATE", "c": "COMPLEX", "e": "ENRICH", "x": "META"}
"""One-key answers in the interactive loop; any route label typed in full works too."""


def resolve_session(folder: Path, given: str) -> str:
    """The full id of the one session in `folder` whose id is or starts with `given`.

    `sessions list` prints ids cut to 20 characters; any unique prefix names its session.

    Raises:
        ValueError: no session, or more than one, matches.
    """
    prefix = given if given.startswith("chatcmpl-") else f"chatcmpl-{given}"
    ids = sorted({path.stem.split("_", 1)[-1] for path in folder.glob(f"*_{prefix}*.json")}) if folder.is_dir() else []
    if not ids:
        raise ValueError(f"No session {given!r} in {folder}: nothing labelled (see `python -m tools.sessions list`).")
    if len(ids) > 1:
        raise ValueError(f"{given!r} matches {len(ids)} sessions in {folder} ({', '.join(ids[:3])}, ...): "
                         "give more of the id.")
    return ids[0]


def parse_answer(answer: str, logged: str | None) -> str | None:
    """Route label from an interactive answer: a shortcut, a label, or empty for 'the logged one was right'.

    Raises:
        ValueError: the answer names no route.
    """
    answer = answer.strip()
    if not answer:
        if logged is None:
            raise ValueError("this session has no logged route to confirm; type one")
        return logged
    route = SHORTCUTS.get(answer.lower(), answer.upper())
    if route not in ROUTES:
        raise ValueError(f"Unknown route {answer!r}. Expected one of: {list(SHORTCUTS)} or {list(ROUTES)}")
    return route


def interactive(
    records: list[dict[str, Any]],
    labels: dict[str, dict[str, Any]],
    save: Callable[[], None],
    ask: Callable[[str], str] = input,
    out: TextIO = sys.stdout,
) -> int:
    """Ask a person for the expected route and a rating of each record; return how many were labelled.

    Every answer is saved at once, so quitting (or Ctrl-C) loses nothing.
    """
    keys = "/".join(f"{k}={v}" for k, v in SHORTCUTS.items())
    done = 0
    for index, record in enumerate(records, 1):
        logged = record.get("route_label")
        print(
            f"\n[{index}/{len(records)}] {record['session_id']}  {record.get('timestamp', '')[:19]}", file=out
        )
        print(f"  query : {(record.get('user_query') or '')[:400]}", file=out)
        print(
            f"  routed: {logged}  ({record.get('route_reason')})  classifier said: "
            f"{record.get('classification_raw')!r}",
            file=out,
        )
        answer_text = next(
            (
                s.get("response_content")
                for s in reversed(record.get("steps") or [])
                if s.get("node") == "generate"
            ),
            None,
        )
        if answer_text:
            print(f"  answer: {answer_text[:300]}", file=out)
        while True:
            reply = ask(f"  expected route [{keys}, Enter = {logged}, n = skip, q = quit]: ")
            if reply.strip().lower() == "q":
                return done
            if reply.strip().lower() == "n":
                route = "skip"
                break
            try:
                route = parse_answer(reply, logged)
                break
            except ValueError as error:
                print(f"  {error}", file=out)
        if route == "skip":
            continue
        rating_text = ask("  rating 1-5 (Enter = none): ").strip()
        rating = float(rating_text) if rating_text.replace(".", "", 1).isdigit() else None
        comment = ask("  comment (Enter = none): ").strip() or None
        set_label(labels, record["session_id"], route, rating, comment)
        save()
        done += 1
    return done


def main(argv: list[str] | None = None) -> int:
    """Run the labelling command line."""
    settings = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m evals.label",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--file", type=Path, default=Path(settings.eval_labels_file), help="EVAL_LABELS_FILE")
    parser.add_argument("--dir", type=Path, default=Path(settings.session_log_dir), help="SESSION_LOG_DIR")
    parser.add_argument("--route", help="only sessions on this backend path")
    parser.add_argument("--label", help="only sessions routed to this label")
    parser.add_argument("--since", type=parse_since, help="only the last 30m, 12h, 1d…")
    parser.add_argument("--errors", action="store_true")
    parser.add_argument("--client")
    parser.add_argument("--all", action="store_true", help="also sessions that already have a label")
    parser.add_argument("--limit", type=int, default=50)
    commands = parser.add_subparsers(dest="command")
    one = commands.add_parser("set", help="label one session without prompting")
    one.add_argument("session_id")
    one.add_argument("--route", dest="expected", required=True)
    one.add_argument("--rating", type=float)
    one.add_argument("--comment")
    commands.add_parser("show", help="print the labels file")
    args = parser.parse_args(argv)

    labels = load_labels(args.file)
    if args.command == "show":
        print(json.dumps(labels, indent=2, ensure_ascii=False))  # noqa: T201
        return 0
    if args.command == "set":
        try:
            session_id = resolve_session(args.dir, args.session_id)
            set_label(labels, session_id, args.expected, args.rating, args.comment)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        save_labels(args.file, labels)
        print(f"labelled {session_id}: {labels[session_id]['expected_route']}")  # noqa: T201
        return 0
    records = [r for r in iter_records(args.dir, args)
               if (args.all or r["session_id"] not in labels) and not is_synthetic(r)]
    records = [r for r in records if r.get("user_query") is not None][: args.limit]
    if not records:
        print(f"no unlabelled sessions in {args.dir} match", file=sys.stderr)
        return 0
    try:
        done = interactive(records, labels, lambda: save_labels(args.file, labels))
    except (EOFError, KeyboardInterrupt):
        done = -1
    print(f"\nlabels saved to {args.file}" + (f" ({done} new)" if done >= 0 else ""))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
