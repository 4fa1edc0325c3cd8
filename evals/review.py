"""The session-review agent: find where routing and prompts fall short, and propose a prompt edit.

    python -m evals.review [--since 1d] [--findings logs/evals/<run>/summary.json] [--out logs/reviews/<time>]
    python -m evals.review --apply                 # apply the proposed edit, keep it only if the eval holds
    python -m evals.review --proposal my.patch --apply   # gate a person's own prompt edit the same way
    python -m evals.review --history               # the operator's prompt changes (PROMPTS_DIR)
    python -m evals.review --revert [CHANGE]       # undo one (default: the newest not undone)

A LangGraph graph of its own, read top to bottom:

    START -> load_findings -> group_problems -> propose_edit --(--apply)--> apply_edit -> write_review -> END
                                                             \\-----------------------> write_review -> END

`load_findings` turns recent session records into a dataset and judges the logged decisions
with `evals.evaluators` (plus the disagreements of an eval run's summary, if given);
`group_problems` groups what is wrong (misroutes, weak enrichment, missed meta prompts,
latency outliers, truncated answers) with evidence, in plain Python; `propose_edit` asks a
model (the primary backend by default) for the narrative and one edit of a file under
`prompts/`, and falls back to a deterministic edit when the model's answer is not a usable
edit (the review says which it was); the edit becomes a unified diff checked with
`git apply --check`. Prompts change only with `--apply`, and then only if the regression
eval's accuracy does not drop.

The review works on a copy of the prompts the router reads (`<out>/prompts`: the shipped
ones with the operator's edits in `PROMPTS_DIR` over them). A kept edit is written to the
operator's folder with its history (`prompts.overlay`), never to the checkout's `prompts/`;
`PromptOverlay.revert` (or the review desk) undoes it.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from core.messages import last_user_text
from core.sessions.reading import parse_since
from core.settings import Settings
from evals.build_dataset import build_examples
from evals.evaluators import evaluate_offline
from evals.label import load_labels
from evals.meta_catalogue.discover import discover_templates
from evals.settings import EVAL_PROMPTS
from prompts.overlay import PromptOverlay, ShippedPromptsError

EVIDENCE_PER_GROUP = 8
_FILE_BLOCK = re.compile(r"FILE:\s*([\w/.-]+?)(?:\.md)?\s*\n<<<\n(.*?)\n>>>", re.S)
# Shapes that only client templates have (a person rarely opens with "### Task:"); matches are
# reported as suspected missed META, for a person to confirm.
_META_SHAPES = re.compile(r"\A\s*### Task:|<chat_history>", re.I)


@dataclass
class ReviewContext:
    """Where the review reads from and what it may do."""

    session_dir: Path
    trace_dir: Path | None
    prompts_dir: Path
    labels_file: Path
    since: float | None = None
    findings: Path | None = None
    """An eval run's `summary.json` whose disagreements count as evidence too."""
    apply: bool = False
    regression_set: Path | None = None
    margin: float = 0.0
    proposal: Path | None = None
    """A ready patch to gate instead of asking the model."""
    backend: str = "primary"
    overlay: Path | None = None
    """The operator's prompt folder a kept edit is written to (`prompts_dir` is then a copy to work on)."""
    out_dir: Path = field(default_factory=lambda: Path("logs/reviews"))
    settings: Settings = field(default_factory=Settings)
    """The router's settings: its logs, the backends the review model and the regression eval use."""


class Problem(TypedDict):
    """One group of problems of one kind, with evidence."""

    kind: str
    title: str
    count: int
    evidence: list[dict[str, Any]]


class ReviewState(TypedDict, total=False):
    """What the review knows as it goes."""

    sessions: int
    """Sessions read."""
    rows: list[dict[str, Any]]
    """Per session: the example, its logged result and the evaluators' verdicts."""
    extra_misroutes: list[dict[str, Any]]
    """Disagreements taken from an eval run's summary."""
    unknown_templates: list[dict[str, Any]]
    """Openings many sessions share that the META rules do not know (`discover_templates`)."""
    problems: list[Problem]
    narrative: str
    proposal_source: Literal["model", "fallback", "given", "none"]
    proposal_note: str
    patch: str
    patch_valid: bool
    patch_check: str
    applied: dict[str, Any]
    review_path: str


# --- deterministic parts ---------------------------------------------------------------------


def logged_result(example: dict[str, Any]) -> dict[str, Any]:
    """The decision a session was logged with, shaped as a replay result (so evaluators judge it)."""
    meta = example["metadata"]
    return {
        "example_id": meta["example_id"],
        "mode": "logged",
        "route": meta.get("logged_route"),
        "route_reason": meta.get("logged_reason"),
        "backend": meta.get("logged_backend"),
        "classification_raw": meta.get("classification_raw"),
        "classification_ms": meta.get("classification_ms"),
        "total_ms": meta.get("total_ms"),
        "steps": meta.get("steps") or [],
        "error": meta.get("error"),
    }


def load_findings(state: ReviewState, runtime: Runtime[ReviewContext]) -> ReviewState:
    """Read recent sessions, judge their logged decisions, and take in an eval run's findings."""
    ctx = runtime.context
    settings = ctx.settings
    filters = argparse.Namespace(since=ctx.since)
    examples, _ = build_examples(
        ctx.session_dir,
        trace_dir=ctx.trace_dir,
        labels=load_labels(ctx.labels_file),
        filters=filters,
        content_ceiling=settings.session_log_content,
        truncate_chars=settings.session_log_truncate_chars,
    )
    results = [logged_result(e) for e in examples]
    evaluation = evaluate_offline(results, examples) if examples else None
    rows = [
        {"example": e, "result": r, "verdicts": v}
        for e, r, v in zip(examples, results, evaluation.rows if evaluation else [], strict=True)
    ]
    extra: list[dict[str, Any]] = []
    if ctx.findings is not None and ctx.findings.is_file():
        extra = json.loads(ctx.findings.read_text()).get("disagreements") or []
    unknown = discover_templates(
        {"session_id": e["metadata"].get("session_id"), "messages": e["inputs"]["messages"], "route": r.get("route")}
        for e, r in zip(examples, results, strict=True)
    )
    return {"sessions": len(examples), "rows": rows, "extra_misroutes": extra, "unknown_templates": unknown}


def _evidence(row: dict[str, Any], **detail: Any) -> dict[str, Any]:
    example, result = row["example"], row["result"]
    meta = example["metadata"]
    query = last_user_text(example["inputs"]["messages"]).replace("\n", " ")
    return {
        "session_id": meta.get("session_id"),
        "query": query[:300],
        "logged": result.get("route"),
        "expected": (example.get("outputs") or {}).get("route"),
        "reason": result.get("route_reason"),
        "classifier": result.get("classification_raw"),
        **detail,
    }


def group_problems(state: ReviewState) -> ReviewState:
    """Group the findings by kind, largest first, each with its evidence."""
    rows = state.get("rows") or []
    groups: dict[str, Problem] = {}

    def add(kind: str, title: str, item: dict[str, Any]) -> None:
        group = groups.setdefault(kind, {"kind": kind, "title": title, "count": 0, "evidence": []})
        group["count"] += 1
        if len(group["evidence"]) < EVIDENCE_PER_GROUP:
            group["evidence"].append(item)

    for row in rows:
        verdicts, result, example = row["verdicts"], row["result"], row["example"]
        expected = (example.get("outputs") or {}).get("route")
        query = last_user_text(example["inputs"]["messages"])
        if (
            expected == "META"
            and result.get("route") != "META"
            or (
                result.get("route") not in ("META", None)
                and expected in (None, "META")
                and _META_SHAPES.search(query)
            )
        ):
            add(
                "missed_meta",
                "Client housekeeping prompts not recognised as META (labelled, or shaped like one)",
                _evidence(row),
            )
        elif verdicts["route_accuracy"]["score"] == 0:
            add("misroute", "Misroutes (logged route differs from the label)", _evidence(row))
        elif (example["metadata"].get("rating") or 5) <= 2:
            add(
                "low_rating", "Answers rated 2 or lower", _evidence(row, rating=example["metadata"]["rating"])
            )
        if verdicts["enrichment_health"]["score"] == 0:
            add(
                "weak_enrichment",
                "Weak enrichment (search failed, empty, or unused)",
                _evidence(row, detail=verdicts["enrichment_health"]["comment"]),
            )
        steps = result.get("steps") or []
        if (
            any(s.get("after_first_byte") for s in steps)
            or "mid-stream" in (result.get("error") or "")
            or "truncat" in (result.get("error") or "").lower()
        ):
            add(
                "truncation",
                "Answers cut off after the first byte",
                _evidence(row, error=result.get("error")),
            )
    for item in state.get("extra_misroutes") or []:
        add(
            "misroute",
            "Misroutes (logged route differs from the label)",
            {
                "session_id": item.get("session_id"),
                "query": item.get("query"),
                "logged": item.get("route"),
                "expected": item.get("expected"),
                "reason": item.get("reason"),
                "classifier": item.get("classifier"),
                "from": "eval run",
            },
        )
    for row, slow in _latency_outliers(rows):
        add("latency", "Latency outliers (over 3x the median of their route)", _evidence(row, slow=slow))
    problems = sorted(groups.values(), key=lambda g: -g["count"])
    return {"problems": problems}


def _latency_outliers(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Sessions whose classification or total time is over 3x the median of their route and 50+ ms over it.

    Returns each such session once, with a text naming every slow measure.
    """
    slow: dict[int, list[str]] = {}
    for measure in ("classification_ms", "total_ms"):
        by_route: dict[str, list[float]] = {}
        for row in rows:
            value = row["result"].get(measure)
            if value is not None:
                by_route.setdefault(row["result"].get("route") or "(none)", []).append(value)
        for index, row in enumerate(rows):
            value = row["result"].get(measure)
            values = by_route.get(row["result"].get("route") or "(none)") or []
            if value is None or len(values) < 3:  # no median worth the name
                continue
            typical = statistics.median(values)
            if value > 3 * typical and value - typical > 50:
                slow.setdefault(index, []).append(
                    f"{measure.removesuffix('_ms')} {value:.0f} ms (median {typical:.0f} ms)"
                )
    return [(rows[index], ", ".join(parts)) for index, parts in sorted(slow.items())]


def _escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def fallback_edit(problems: list[Problem], prompts_dir: Path) -> tuple[str, str, str] | None:
    """A deterministic edit for the largest misroute group: worked examples in `routing/system`.

    Returns (prompt name, new text, note), or None when no group can be fixed by a prompt.
    """
    misroutes = next((p for p in problems if p["kind"] == "misroute"), None)
    if misroutes is None:
        return None
    path = prompts_dir / "routing" / "system.md"
    current = path.read_text(encoding="utf-8").rstrip("\n")
    seen = set()
    lines = []
    for item in misroutes["evidence"]:
        query = " ".join((item.get("query") or "").split())[:160]
        if not query or not item.get("expected") or query in seen:
            continue
        seen.add(query)
        line = f'- "{_escape_braces(query)}" -> {item["expected"]}'
        if line not in current:
            lines.append(line)
    if not lines:
        return None
    heading = "Examples from past sessions (the right route):"
    addition = ("\n" if heading in current else f"\n\n{heading}\n") + "\n".join(lines)
    note = (
        f"adds {len(lines)} misrouted queries from the sessions as worked examples to routing/system, "
        "so the classifier sees the cases it got wrong"
    )
    return "routing/system", current + addition + "\n", note


def unified_diff(prompts_dir: Path, name: str, new_text: str) -> str:
    """A unified diff of prompt `name` to `new_text`, with paths relative to the prompts' parent."""
    rel = f"{prompts_dir.name}/{name}.md"
    old = (prompts_dir / f"{name}.md").read_text(encoding="utf-8")
    if not new_text.endswith("\n"):
        new_text += "\n"
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=f"a/{rel}",
            tofile=f"b/{rel}",
        )
    )


def check_patch(patch: str, prompts_dir: Path, reverse: bool = False, check: bool = True) -> tuple[bool, str]:
    """Run `git apply` (with `--check` unless told otherwise) on `patch` in the prompts' parent folder."""
    with tempfile.NamedTemporaryFile("w", suffix=".patch", delete=False) as handle:
        handle.write(patch)
    command = ["git", "apply", *(["--check"] if check else []), *(["-R"] if reverse else []), handle.name]
    done = subprocess.run(command, cwd=prompts_dir.parent, capture_output=True, text=True, check=False)
    Path(handle.name).unlink(missing_ok=True)
    return done.returncode == 0, (done.stderr or done.stdout).strip() or "applies cleanly"


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"(?<!\{)\{(\w+)\}(?!\})", text))


def usable_model_edit(answer: str, prompts_dir: Path) -> tuple[str, str] | None:
    """(prompt name, new text) from the model's FILE block, if it names a prompt and keeps placeholders."""
    match = _FILE_BLOCK.search(answer or "")
    if match is None:
        return None
    name, text = match.group(1).strip().removeprefix("prompts/"), match.group(2)
    path = (prompts_dir / f"{name}.md").resolve()
    if not path.is_file() or prompts_dir.resolve() not in path.parents:
        return None
    old = path.read_text(encoding="utf-8")
    if text.strip() == old.strip() or _placeholders(text) != _placeholders(old):
        return None
    try:
        text.format(**dict.fromkeys(_placeholders(old), ""))
    except (KeyError, IndexError, ValueError):  # a stray brace would break the prompt at run time
        return None
    return name, text


def findings_text(state: ReviewState) -> str:
    """The grouped problems as text for the model."""
    lines = [f"{state.get('sessions', 0)} sessions reviewed."]
    for problem in state.get("problems") or []:
        lines.append(f"\n## {problem['title']} ({problem['count']})")
        for item in problem["evidence"]:
            lines.append("- " + "; ".join(f"{k}={v}" for k, v in item.items() if v not in (None, "")))
    return "\n".join(lines)


def ask_model(settings: Settings, backend: str, system: str, user: str) -> str:
    """One chat call to a configured backend (synchronous: the review is a command-line job)."""
    base_url, model, key = {
        "primary": (settings.primary_base_url, settings.primary_model, settings.primary_api_key),
        "classifier": (settings.classifier_base_url, settings.classifier_model, settings.classifier_api_key),
        "xai": (settings.xai_base_url, settings.xai_model, settings.xai_api_key),
    }[backend]
    headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
    with httpx.Client(
        base_url=base_url.rstrip("/"), timeout=settings.primary_timeout_s, headers=headers
    ) as client:
        answer = client.post(
            "/chat/completions",
            json={
                "model": model,
                "temperature": 0,
                "max_tokens": 4096,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            },
        )
        answer.raise_for_status()
        return answer.json()["choices"][0]["message"].get("content") or ""


def propose_edit(state: ReviewState, runtime: Runtime[ReviewContext]) -> ReviewState:
    """Ask the model for a narrative and an edit; fall back to a deterministic edit when it gives none."""
    ctx = runtime.context
    if ctx.proposal is not None:
        patch = ctx.proposal.read_text(encoding="utf-8")
        valid, check = check_patch(patch, ctx.prompts_dir)
        return {
            "narrative": "",
            "proposal_source": "given",
            "patch": patch,
            "patch_valid": valid,
            "patch_check": check,
            "proposal_note": f"the edit in {ctx.proposal}",
        }
    problems = state.get("problems") or []
    if not problems:
        return {
            "narrative": "No problems found in the reviewed sessions.",
            "proposal_source": "none",
            "patch": "",
            "patch_valid": False,
            "patch_check": "no edit proposed",
        }
    files = "\n\n".join(
        f"FILE: {name}\n<<<\n{(ctx.prompts_dir / f'{name}.md').read_text(encoding='utf-8')}\n>>>"
        for name in ("routing/system", "routing/request")
    )
    try:
        answer = ask_model(ctx.settings, ctx.backend,
            EVAL_PROMPTS.render("review"),
            EVAL_PROMPTS.render("review_request", findings=findings_text(state), prompt_files=files),
        )
        failure = None
    except (httpx.HTTPError, KeyError, IndexError, ValueError) as error:
        answer, failure = "", f"{type(error).__name__}: {error}"
    edit = usable_model_edit(answer, ctx.prompts_dir)
    narrative = _FILE_BLOCK.sub("", answer).strip()
    if edit is not None:
        source, note = "model", f"the model's edit of {edit[0]}"
        name, text = edit
    else:
        fallback = fallback_edit(problems, ctx.prompts_dir)
        why = f"the model call failed ({failure})" if failure else "the model's answer held no usable edit"
        if fallback is None:
            return {
                "narrative": narrative,
                "proposal_source": "none",
                "patch": "",
                "patch_valid": False,
                "patch_check": "no edit proposed",
                "proposal_note": f"{why}, and no problem here is fixed by a prompt",
            }
        name, text, how = fallback
        source, note = "fallback", f"{why}; this is the deterministic fallback: it {how}"
    patch = unified_diff(ctx.prompts_dir, name, text)
    valid, check = check_patch(patch, ctx.prompts_dir)
    return {
        "narrative": narrative,
        "proposal_source": source,
        "proposal_note": note,
        "patch": patch,
        "patch_valid": valid,
        "patch_check": check,
    }


def route_after_proposal(
    state: ReviewState, runtime: Runtime[ReviewContext]
) -> Literal["apply_edit", "write_review"]:
    """Apply only when asked to and when there is a valid patch."""
    return "apply_edit" if runtime.context.apply and state.get("patch_valid") else "write_review"


def apply_edit(state: ReviewState, runtime: Runtime[ReviewContext]) -> ReviewState:
    """Run the regression eval, apply the patch, run it again; keep the edit only if accuracy holds."""
    from evals.run import REGRESSION_SET, run_eval

    ctx = runtime.context
    dataset = ctx.regression_set or REGRESSION_SET
    work = ctx.out_dir / "eval"

    def accuracy(name: str, baseline: Path | None = None) -> float:
        # Each replay reads its own copy of the prompts as they are now, so the one after the
        # edit never sees a prompt read (and kept) before it.
        snapshot = work / f"prompts_{name}"
        shutil.copytree(ctx.prompts_dir, snapshot, dirs_exist_ok=True)
        settings = ctx.settings.model_copy(update={"prompts_dir": str(snapshot.resolve())})
        summary = run_eval(dataset, work / name, settings=settings, baseline=baseline, progress=False)
        return summary["metrics"].get("route_accuracy_overall") or 0.0

    before = accuracy("before")
    ok, message = check_patch(state["patch"], ctx.prompts_dir, check=False)
    if not ok:
        return {"applied": {"kept": False, "why": f"git apply failed: {message}"}}
    after = accuracy("after", work / "before" / "summary.json")
    kept = after >= before - ctx.margin
    if not kept:
        check_patch(state["patch"], ctx.prompts_dir, reverse=True, check=False)
    verdict = "kept" if kept else "reverted"
    changes = []
    if kept and ctx.overlay is not None:
        overlay = PromptOverlay(ctx.overlay)
        note = f"review {ctx.out_dir.name}: regression accuracy {before:.3f} -> {after:.3f}"
        for name in patched_prompts(state["patch"]):
            text = (ctx.prompts_dir / f"{name}.md").read_text(encoding="utf-8")
            changes.append(overlay.write(name, text, note)["id"])
    return {
        "applied": {
            "kept": kept,
            "before": before,
            "after": after,
            "dataset": str(dataset),
            "overlay": str(ctx.overlay) if ctx.overlay is not None else None,
            "changes": changes,
            "why": f"regression accuracy {before:.3f} -> {after:.3f}: {verdict}"
            + (f" (written to {ctx.overlay}, change {', '.join(map(str, changes))})" if changes else ""),
        }
    }


def patched_prompts(patch: str) -> list[str]:
    """Names of the prompts a unified diff changes (`+++ b/prompts/routing/system.md` -> `routing/system`)."""
    names = re.findall(r"^\+\+\+ b/[^/\n]+/(.+?)\.md\s*$", patch, flags=re.M)
    return sorted(set(names))


def write_review(state: ReviewState, runtime: Runtime[ReviewContext]) -> ReviewState:
    """Write `review.md` (and `proposed.patch`) with the evidence and the proposed edit."""
    ctx = runtime.context
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Session review — {datetime.now(UTC).isoformat(timespec='seconds')}",
        "",
        f"{state.get('sessions', 0)} sessions from `{ctx.session_dir}` reviewed"
        + (f", plus the findings of `{ctx.findings}`" if ctx.findings else "")
        + ".",
        "",
    ]
    narrative = state.get("narrative") or ""
    source = state.get("proposal_source", "none")
    if narrative and source == "model":
        lines += ["## What goes wrong (the model's reading)", "", narrative, ""]
    elif narrative:
        lines += [
            "## The model's answer (held no usable edit, shown as is)",
            "",
            "> " + narrative[:1500].replace("\n", "\n> "),
            "",
        ]
    lines += ["## Problems, largest group first", ""]
    if not state.get("problems"):
        lines.append("None found.")
    for problem in state.get("problems") or []:
        lines += [f"### {problem['title']}: {problem['count']}", ""]
        for item in problem["evidence"]:
            who = f"`{item['session_id']}`" if item.get("session_id") else "(eval run)"
            detail = "; ".join(
                f"{k} {v}"
                for k, v in item.items()
                if k not in ("session_id", "query") and v not in (None, "")
            )
            lines.append(f"- {who} — {item.get('query') or ''!r} — {detail}")
        if problem["kind"] == "missed_meta":
            lines.append(
                "\n  META is decided by rules, not prompts: extend `core/routing/meta_clients.py` "
                "with these shapes (and a fixture under `tests/fixtures/meta_prompts/`)."
            )
        if problem["kind"] in ("latency", "truncation"):
            lines.append(
                "\n  Not a prompt problem: check the backend named in the sessions (timeouts, load, "
                "`max_tokens`)."
            )
        lines.append("")
    unknown = state.get("unknown_templates") or []
    lines += [f"## Templates seen repeatedly that the META rules do not know: {len(unknown)}", ""]
    for candidate in unknown:
        example = candidate.get("example") or {}
        lines += [
            f"- {candidate['sessions']} sessions ({candidate['variants']} different requests, {candidate['where']} "
            f"message, routed {candidate.get('routes')}), e.g. `{example.get('session_id')}`; common opening:",
            "",
            "  > " + candidate["common_prefix"][:400].replace("\n", "\n  > "),
            "",
        ]
    if unknown:
        lines += [
            "If one is a chat client's task prompt, add it to the META catalogue "
            "(`evals/meta_catalogue/README.md`, \"Adding a template found in the logs\").",
            "",
        ]
    lines += ["## Proposed edit", ""]
    if state.get("patch"):
        lines += [
            f"Source: **{source}** — {state.get('proposal_note', '')}.",
            f"`git apply --check`: {'passes' if state.get('patch_valid') else 'FAILS'} "
            f"({state.get('patch_check')}).",
            "",
            "```diff",
            state["patch"].rstrip("\n"),
            "```",
            "",
        ]
        (ctx.out_dir / "proposed.patch").write_text(state["patch"], encoding="utf-8")
    else:
        lines += [f"None ({state.get('proposal_note') or state.get('patch_check', 'no edit proposed')}).", ""]
    applied = state.get("applied")
    if applied:
        lines += ["## Applied with --apply", "", applied["why"] + ".", ""]
    else:
        lines += [
            "Prompts were not changed (run with `--apply` to apply the edit behind the regression eval).",
            "",
        ]
    path = ctx.out_dir / "review.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return {"review_path": str(path)}


def build_review_graph() -> StateGraph:
    """The review agent's graph, uncompiled."""
    builder = StateGraph(ReviewState, context_schema=ReviewContext)
    builder.add_node(load_findings)
    builder.add_node(group_problems)
    builder.add_node(propose_edit)
    builder.add_node(apply_edit)
    builder.add_node(write_review)
    builder.add_edge(START, "load_findings")
    builder.add_edge("load_findings", "group_problems")
    builder.add_edge("group_problems", "propose_edit")
    builder.add_conditional_edges("propose_edit", route_after_proposal)
    builder.add_edge("apply_edit", "write_review")
    builder.add_edge("write_review", END)
    return builder


review_graph = build_review_graph().compile(name="ai-router-review")


def main(argv: list[str] | None = None) -> int:
    """Run the review command line."""
    from evals.run import REGRESSION_SET, ensure_backends, replay_settings
    from prompts import PROMPTS_DIR

    settings = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m evals.review",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dir", type=Path, default=Path(settings.session_log_dir), help="SESSION_LOG_DIR")
    parser.add_argument("--traces", type=Path, default=Path(settings.trace_log_dir), help="TRACE_LOG_DIR")
    parser.add_argument(
        "--labels", type=Path, default=Path(Settings().eval_labels_file), help="EVAL_LABELS_FILE"
    )
    parser.add_argument(
        "--since", type=parse_since, default=parse_since("7d"), help="sessions of the last … (7d)"
    )
    parser.add_argument("--findings", type=Path, help="an eval run's summary.json to include")
    parser.add_argument(
        "--prompts-dir", type=Path,
        help="the operator's prompt folder, an overlay over prompts/ that a kept edit is written to (PROMPTS_DIR)",
    )
    parser.add_argument(
        "--backend",
        choices=["primary", "classifier", "xai"],
        default="primary",
        help="model that writes the review",
    )
    parser.add_argument("--out", type=Path, help="review folder (default logs/reviews/<time>)")
    parser.add_argument(
        "--apply", action="store_true", help="apply the edit if the regression eval does not get worse"
    )
    parser.add_argument("--proposal", type=Path, help="gate this patch instead of asking the model")
    parser.add_argument("--regression-set", type=Path, default=REGRESSION_SET)
    parser.add_argument(
        "--margin", type=float, default=0.0, help="accuracy the edit may lose and still be kept"
    )
    parser.add_argument("--simulator", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--history", action="store_true", help="list the changes in the operator's prompt folder")
    parser.add_argument("--revert", nargs="?", const=0, type=int, metavar="CHANGE",
                        help="undo a change in the operator's prompt folder (default: the newest not undone)")
    args = parser.parse_args(argv)
    if args.history or args.revert is not None:
        return _overlay_command(args.prompts_dir or (Path(settings.prompts_dir) if settings.prompts_dir else None),
                                args.revert)

    settings, sim = ensure_backends(args.simulator, None, replay_settings(settings))
    if sim:
        print(f"no backend configured: the review model is the embedded simulator at {sim}", file=sys.stderr)
    out_dir = args.out or Path("logs/reviews") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = args.prompts_dir or (Path(settings.prompts_dir) if settings.prompts_dir else None)
    if folder is None and args.apply:
        print("--apply writes the edit to the operator's prompt folder: set PROMPTS_DIR (or --prompts-dir)",
              file=sys.stderr)
        return 2
    try:
        overlay = PromptOverlay(folder) if folder is not None else None
    except ShippedPromptsError as error:
        print(error, file=sys.stderr)
        return 2
    # The review reads and edits a copy of what the router reads; only a kept edit reaches the overlay.
    working = out_dir / "prompts"
    shutil.rmtree(working, ignore_errors=True)
    if overlay is not None:
        overlay.materialise(working)
    else:
        shutil.copytree(PROMPTS_DIR, working, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    context = ReviewContext(
        session_dir=args.dir,
        trace_dir=args.traces,
        prompts_dir=working.resolve(),
        overlay=folder,
        labels_file=args.labels,
        since=args.since,
        findings=args.findings,
        apply=args.apply,
        regression_set=args.regression_set,
        margin=args.margin,
        proposal=args.proposal,
        backend=args.backend,
        out_dir=out_dir,
        settings=settings,
    )
    state = review_graph.invoke({}, context=context)
    problems = ", ".join(f"{p['kind']} {p['count']}" for p in state.get("problems") or []) or "none"
    print(
        f"reviewed {state.get('sessions', 0)} sessions; problems: {problems}; "  # noqa: T201
        f"unknown templates: {len(state.get('unknown_templates') or [])}; "
        f"edit: {state.get('proposal_source')}; review: {state['review_path']}"
    )
    if state.get("applied"):
        print(state["applied"]["why"])  # noqa: T201
    return 0


def _overlay_command(folder: Path | None, revert: int | None) -> int:
    """`--history` and `--revert`: list or undo changes in the operator's prompt folder."""
    if folder is None:
        print("no operator prompt folder: set PROMPTS_DIR (or --prompts-dir)", file=sys.stderr)
        return 2
    try:
        overlay = PromptOverlay(folder)
        if revert is not None:
            entry = overlay.revert(revert or None)
            print(f"change {entry['reverts']} reverted ({entry['name']}): change {entry['id']} in {folder}")  # noqa: T201
            return 0
    except (ShippedPromptsError, LookupError) as error:
        print(error, file=sys.stderr)
        return 2
    for entry in overlay.history():
        print(f"{entry['id']:>3}  {entry['at']}  {entry['action']:<6} {entry['name']}  {entry.get('note', '')}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
