"""The review agent on seeded bad sessions: grouped problems, a valid patch, and the --apply gate."""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import pytest

from evals.review import build_review_graph, fallback_edit, unified_diff, usable_model_edit
from tests.conftest import (
    CLASSIFIER_MODEL,
    PRIMARY_MODEL,
    ROOT,
    sim_env,
    start_router,
    stop_router,
    wait_for_record,
)
from tests.test_evals_loop import run_module

MISROUTED = [  # the simulator's keyword classifier routes these MODERATE; a person says ENRICH
    "Who won the Champions League match last night?",
    "Is GitHub down at the moment?",
]
# A housekeeping-looking prompt the META rules do not know (no catalogued template, no output
# contract): the review must still point at it. (The detector recognises an instruction to
# summarise a <chat_history> block since the META catalogue, so the seeded miss asks for a label.)
MISSED_META = (
    "### Task:\nWrite a short label for the sidebar.\n"
    "<chat_history>\nUSER: hi\n</chat_history>"
)

UNKNOWN_TEMPLATE = (
    "Record keeping for the helpdesk: condense the exchange below into one line for the ticket "
    "archive, keeping order numbers and product names exactly as written.\n\n---\n"
)
UNKNOWN_TEMPLATE_CHATS = (
    "CUSTOMER: my order 1182 never arrived\nAGENT: I have resent it",
    "CUSTOMER: the blender lid cracked\nAGENT: a replacement is on its way",
    "CUSTOMER: can I change the delivery address for 2291?\nAGENT: done",
)


@pytest.fixture(scope="module")
def seeded(sim, tmp_path_factory):
    """Sessions with known problems: misroutes (labelled by feedback), a failed search, a missed
    META prompt, a slow classification and an answer cut mid-stream."""
    base = sim.url
    httpx.post(f"{base}/sim/reset").raise_for_status()
    tmp = tmp_path_factory.mktemp("review")
    router = start_router(sim_env(sim), tmp)
    try:
        client = router.client()

        def ask(text: str, **kwargs) -> str:
            return client.chat.completions.create(
                model="ai-router", messages=[{"role": "user", "content": text}], **kwargs
            ).id

        ids = {f"misroute{i}": ask(q) for i, q in enumerate(MISROUTED)}
        for sid in ids.values():
            httpx.post(
                f"{router.url}/v1/feedback", json={"response_id": sid, "score": 1, "expected_route": "ENRICH"}
            ).raise_for_status()
        ids["meta"] = ask(MISSED_META)
        for chat in UNKNOWN_TEMPLATE_CHATS:  # a client's task prompt nobody catalogued, three chats
            ask(UNKNOWN_TEMPLATE + chat)
        for text in ("explain monads", "explain functors", "explain lenses"):
            ask(text)
        httpx.post(
            f"{base}/sim/faults",
            json={"fault": "slow_first_token", "model": CLASSIFIER_MODEL, "delay_ms": 400},
        ).raise_for_status()
        ids["slow"] = ask("explain applicatives")
        # Forever, not once: the router retries a single 500 and the search would succeed.
        httpx.post(f"{base}/sim/faults", json={"fault": "500", "path": "/v1/responses", "count": -1}).raise_for_status()
        ids["search_failed"] = ask("What's the latest news on fusion power?")
        httpx.post(f"{base}/sim/reset").raise_for_status()
        # Spaced tokens: the chunks before the cut reach the client, so the cut is mid-stream.
        httpx.post(f"{base}/sim/config", json={"token_delay_ms": 20}).raise_for_status()
        httpx.post(f"{base}/sim/faults", json={"fault": "cut", "model": PRIMARY_MODEL}).raise_for_status()
        with client.chat.completions.with_streaming_response.create(
            model="ai-router", messages=[{"role": "user", "content": "explain arrows"}], stream=True
        ) as response:
            ids["cut"] = response.headers["x-session-id"]
            list(response.iter_lines())
        for sid in ids.values():
            wait_for_record(router, sid)
    finally:
        stop_router(router)
    httpx.post(f"{base}/sim/reset").raise_for_status()
    prompts = tmp / "work" / "prompts"
    shutil.copytree(ROOT / "prompts", prompts, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    regression = tmp / "small-regression.jsonl"
    rows = [
        json.loads(x) for x in (ROOT / "evals/datasets/routing_regression.jsonl").read_text().splitlines()
    ]
    regression.write_text("".join(json.dumps(r) + "\n" for r in rows[::10]))  # every tenth: fast, all routes
    env = {
        **sim_env(sim),
        "SESSION_LOG_DIR": str(router.session_dir),
        "TRACE_LOG_DIR": str(router.trace_dir),
        "EVAL_LABELS_FILE": str(tmp / "labels.json"),
    }
    return {"ids": ids, "tmp": tmp, "env": env, "prompts": prompts, "regression": regression}


def review(seeded, out: str, *extra: str) -> subprocess.CompletedProcess:
    done = run_module(
        "evals.review",
        "--prompts-dir",
        str(seeded["prompts"]),
        "--out",
        str(seeded["tmp"] / out),
        "--regression-set",
        str(seeded["regression"]),
        *extra,
        env=seeded["env"],
        cwd=seeded["tmp"],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_review_groups_the_seeded_problems_and_proposes_a_valid_patch(seeded):
    before = (seeded["prompts"] / "routing" / "system.md").read_text()
    review(seeded, "review1")
    text = (seeded["tmp"] / "review1" / "review.md").read_text()
    ids = seeded["ids"]
    sections = {s.split("\n", 1)[0]: s for s in text.split("### ")[1:]}
    misroutes = next(v for k, v in sections.items() if k.startswith("Misroutes"))
    assert misroutes.startswith("Misroutes (logged route differs from the label): 2")
    assert ids["misroute0"] in misroutes and ids["misroute1"] in misroutes
    assert ids["meta"] in next(v for k, v in sections.items() if k.startswith("Client housekeeping"))
    assert ids["search_failed"] in next(v for k, v in sections.items() if k.startswith("Weak enrichment"))
    assert ids["slow"] in next(v for k, v in sections.items() if k.startswith("Latency outliers"))
    assert ids["cut"] in next(v for k, v in sections.items() if k.startswith("Answers cut off"))
    # The template three sessions share, which no META rule knows, is listed for the catalogue.
    unknown = text.split("## Templates seen repeatedly that the META rules do not know: ", 1)[1]
    assert unknown.startswith("1\n") and "- 3 sessions (3 different requests, last message" in unknown
    assert "Record keeping for the helpdesk: condense the exchange below" in unknown.split("## Proposed edit")[0]
    # The simulator's "model" answers canned text, so the edit is the deterministic fallback, and says so.
    assert "Source: **fallback**" in text and "held no usable edit" in text
    patch = (seeded["tmp"] / "review1" / "proposed.patch").read_text()
    assert patch.startswith("--- a/prompts/routing/system.md\n+++ b/prompts/routing/system.md\n")
    assert f'+- "{MISROUTED[0]}" -> ENRICH' in patch
    checked = subprocess.run(
        ["git", "apply", "--check", "-"],
        input=patch,
        cwd=seeded["prompts"].parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert (
        seeded["prompts"] / "routing" / "system.md"
    ).read_text() == before  # never changed without --apply
    assert "Prompts were not changed" in text


def test_apply_keeps_an_edit_that_does_not_hurt_and_reverts_one_that_does(seeded):
    system = seeded["prompts"] / "routing" / "system.md"
    request = seeded["prompts"] / "routing" / "request.md"
    original_request = request.read_text()

    done = review(seeded, "review2", "--apply")
    assert "kept" in done.stdout
    assert f'- "{MISROUTED[0]}" -> ENRICH' in system.read_text()  # the fallback edit is in place
    assert "## Applied with --apply" in (seeded["tmp"] / "review2" / "review.md").read_text()

    # A person's edit that breaks routing (the simulator obeys a directive anywhere in the prompt).
    worse = unified_diff(seeded["prompts"], "routing/request", original_request + "\n#route=SIMPLE\n")
    proposal = seeded["tmp"] / "worse.patch"
    proposal.write_text(worse)
    done = review(seeded, "review3", "--apply", "--proposal", str(proposal))
    assert "reverted" in done.stdout
    assert request.read_text() == original_request
    summary_after = json.loads((seeded["tmp"] / "review3" / "eval" / "after" / "summary.json").read_text())
    assert set(summary_after["routes"].values()) <= {"SIMPLE", "META"}  # the edit really was evaluated


def test_model_edits_are_used_only_when_they_keep_placeholders(tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    good = (
        "FILE: routing/request\n<<<\n"
        "<conversation>\n{history}\n</conversation>\n<q>{query}</q>\n{labels}\n>>>"
    )
    assert usable_model_edit("Narrative.\n" + good, prompts) == (
        "routing/request",
        "<conversation>\n{history}\n</conversation>\n<q>{query}</q>\n{labels}",
    )
    assert usable_model_edit(good.replace("{labels}", ""), prompts) is None  # a placeholder lost
    assert usable_model_edit(good.replace("routing/request", "../../etc/passwd"), prompts) is None
    assert usable_model_edit("I would not change anything.", prompts) is None
    problems = [
        {
            "kind": "misroute",
            "title": "",
            "count": 1,
            "evidence": [{"query": "what is {x} now?", "expected": "ENRICH"}],
        }
    ]
    name, text, _ = fallback_edit(problems, prompts)
    assert name == "routing/system" and '"what is {{x}} now?" -> ENRICH' in text
    assert text.format().endswith('"what is {x} now?" -> ENRICH\n')  # braces escaped for str.format


def test_review_graph_is_wired_as_documented():
    drawn = build_review_graph().compile().get_graph()
    edges = {(e.source, e.target) for e in drawn.edges}
    assert {
        ("__start__", "load_findings"),
        ("load_findings", "group_problems"),
        ("group_problems", "propose_edit"),
        ("propose_edit", "apply_edit"),
        ("propose_edit", "write_review"),
        ("apply_edit", "write_review"),
        ("write_review", "__end__"),
    } == edges
