"""The eval loop end to end on the simulator: sessions → dataset → replay after a prompt edit → report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, sim_env, start_router, stop_router, wait_for_record
from tests.test_chat_routes import TITLE_TASK

# Conversations sent through the router; the name says whether the prompt edit below moves them.
CONVERSATIONS = {
    "greeting": [{"role": "user", "content": "hello"}],
    "proof": [{"role": "user", "content": "Prove the Cauchy-Schwarz inequality"}],
    "weather": [{"role": "user", "content": "What's the weather in Oslo today?"}],
    "title_task": [{"role": "user", "content": TITLE_TASK}],
    "coding_follow_up": [
        {"role": "user", "content": "Write a function that reverses a list"},
        {"role": "assistant", "content": "def rev(xs): return xs[::-1]"},
        {"role": "user", "content": "make it faster"},
    ],
    "CHANGES_price_follow_up": [
        {"role": "user", "content": "What's the bitcoin price this morning?"},
        {"role": "assistant", "content": "About 60,000 dollars."},
        {"role": "user", "content": "and in euros?"},
    ],
    "CHANGES_thanks_after_proof": [
        {"role": "user", "content": "Prove Fermat's little theorem"},
        {"role": "assistant", "content": "By induction on a, using the binomial theorem mod p..."},
        {"role": "user", "content": "thanks, now say it simpler"},
    ],
}

# The deliberate prompt edit: the classifier is shown the history inside the message tag, so
# a follow-up inherits its topic. The simulator's classifier reads only that tag, so exactly
# the follow-ups whose history carries a keyword change route.
EDITED_REQUEST = """<last_user_message>
{history}
{query}
</last_user_message>

Route (one of {labels}):
"""


def run_module(
    module: str, *args: str, env: dict[str, str], cwd: Path, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run `python -m module args` with `env` on top of a clean environment."""
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("PRIMARY_", "CLASSIFIER_", "XAI_", "LANGSMITH_", "LANGCHAIN_", "SESSION_", "EVAL_")
        )
    }
    full.update({"PYTHONPATH": str(ROOT), "LANGSMITH_TRACING": "false", **env})
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=full,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def logged(sim, tmp_path_factory):
    """A router on the simulator that served every conversation once; its sessions by name."""
    httpx.post(f"{sim.url}/sim/reset").raise_for_status()
    tmp = tmp_path_factory.mktemp("evals-loop")
    router = start_router(sim_env(sim), tmp)
    try:
        client = router.client()
        ids = {
            name: client.chat.completions.create(model="ai-router", messages=messages).id
            for name, messages in CONVERSATIONS.items()
        }
        records = {name: wait_for_record(router, sid) for name, sid in ids.items()}
    finally:
        stop_router(router)
    env = {
        **sim_env(sim),
        "SESSION_LOG_DIR": str(router.session_dir),
        "TRACE_LOG_DIR": str(router.trace_dir),
        "EVAL_LABELS_FILE": str(tmp / "labels.json"),
    }
    return {"ids": ids, "records": records, "tmp": tmp, "env": env, "router": router}


def test_dataset_from_sessions_keeps_conversations_and_logged_decisions(logged):
    out = logged["tmp"] / "sessions.jsonl"
    done = run_module("evals.build_dataset", "build", "--out", str(out), env=logged["env"], cwd=logged["tmp"])
    assert done.returncode == 0, done.stderr
    rows = {
        json.loads(line)["metadata"]["session_id"]: json.loads(line) for line in out.read_text().splitlines()
    }
    assert set(rows) == set(logged["ids"].values())
    follow_up = rows[logged["ids"]["CHANGES_price_follow_up"]]
    assert follow_up["inputs"]["messages"] == CONVERSATIONS["CHANGES_price_follow_up"]  # from the trace
    assert follow_up["metadata"]["history_from"] == "trace"
    assert follow_up["metadata"]["logged_route"] == "MODERATE"
    assert rows[logged["ids"]["title_task"]]["metadata"]["logged_route"] == "META"
    assert all(row["outputs"] == {} for row in rows.values())  # nobody labelled them yet

    meta_only = logged["tmp"] / "meta.jsonl"
    run_module(
        "evals.build_dataset",
        "build",
        "--out",
        str(meta_only),
        "--meta-only",
        env=logged["env"],
        cwd=logged["tmp"],
    )
    assert [json.loads(x)["metadata"]["logged_route"] for x in meta_only.read_text().splitlines()] == ["META"]


def test_replay_after_a_prompt_edit_reports_exactly_the_changed_decisions(logged):
    tmp = logged["tmp"]
    dataset = tmp / "replay.jsonl"
    run_module("evals.build_dataset", "build", "--out", str(dataset), env=logged["env"], cwd=tmp)

    unchanged = run_module(
        "evals.run",
        "--dataset",
        str(dataset),
        "--out",
        str(tmp / "same"),
        "--no-progress",
        env=logged["env"],
        cwd=tmp,
    )
    assert unchanged.returncode == 0, unchanged.stderr
    assert json.loads((tmp / "same" / "summary.json").read_text())["changed_vs_logged"] == []

    edited = tmp / "edited-prompts"
    shutil.copytree(ROOT / "prompts", edited, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (edited / "routing" / "request.md").write_text(EDITED_REQUEST)
    done = run_module(
        "evals.run",
        "--dataset",
        str(dataset),
        "--out",
        str(tmp / "edited"),
        "--prompts-dir",
        str(edited),
        "--no-progress",
        "--baseline",
        str(tmp / "same" / "summary.json"),
        env=logged["env"],
        cwd=tmp,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp / "edited" / "summary.json").read_text())
    changed = {c["session_id"]: (c["logged"], c["route"]) for c in summary["changed_vs_logged"]}
    assert changed == {
        logged["ids"]["CHANGES_price_follow_up"]: ("MODERATE", "ENRICH"),
        logged["ids"]["CHANGES_thanks_after_proof"]: ("SIMPLE", "COMPLEX"),
    }
    assert len(summary["baseline"]["changed"]) == 2
    report = (tmp / "edited" / "report.md").read_text()
    assert "## Changed since logged (2)" in report
    for name in ("CHANGES_price_follow_up", "CHANGES_thanks_after_proof"):
        assert logged["ids"][name] in report
    for name in ("greeting", "proof", "coding_follow_up"):
        assert logged["ids"][name] not in report
    page = (tmp / "edited" / "report.html").read_text()
    assert page.count("<svg") >= 3 and "<script" not in page  # plots inline, nothing fetched
    assert 'href="' in page and ".json" in page  # disagreements link to their session records


def test_http_replay_and_labels_make_a_regression_set(logged, sim):
    tmp = logged["tmp"]
    env = logged["env"]
    # Label two sessions in the terminal: the price follow-up should have been ENRICH, the greeting was right.
    answers = "e\n2\nneeded the live price\n\n5\n\nq\n"
    price, greeting = logged["ids"]["CHANGES_price_follow_up"], logged["ids"]["greeting"]
    session_dir = Path(env["SESSION_LOG_DIR"])
    labelled = tmp / "label-sessions"
    labelled.mkdir()
    for sid in (price, greeting):
        shutil.copy(next(session_dir.glob(f"*_{sid}.json")), labelled)
    done = run_module("evals.label", "--dir", str(labelled), env=env, cwd=tmp, stdin=answers)
    assert done.returncode == 0, done.stderr
    labels = json.loads(Path(env["EVAL_LABELS_FILE"]).read_text())
    assert labels[price]["expected_route"] == "ENRICH" and labels[price]["rating"] == 2
    assert labels[greeting]["expected_route"] == "SIMPLE" and labels[greeting]["rating"] == 5

    regression = tmp / "labelled.jsonl"
    run_module("evals.build_dataset", "build", "--out", str(regression), "--labelled-only", env=env, cwd=tmp)
    rows = [json.loads(x) for x in regression.read_text().splitlines()]
    assert sorted(r["outputs"]["route"] for r in rows) == ["ENRICH", "SIMPLE"]

    (tmp / "http").mkdir()
    router = start_router(sim_env(sim), tmp / "http")
    try:
        done = run_module(
            "evals.run",
            "--dataset",
            str(regression),
            "--router",
            router.url,
            "--out",
            str(tmp / "http-run"),
            "--no-progress",
            env=env,
            cwd=tmp,
        )
    finally:
        stop_router(router)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp / "http-run" / "summary.json").read_text())
    assert summary["config"]["router"] == router.url
    assert summary["metrics"]["route_accuracy_overall"] == 0.5  # the follow-up is still misrouted
    assert [d["expected"] for d in summary["disagreements"]] == ["ENRICH"]
    assert len(list((tmp / "http" / "sessions").glob("*.json"))) == 2  # really went through /api/route


def test_gate_fails_when_accuracy_drops_below_the_baseline(logged):
    tmp = logged["tmp"]
    dataset = tmp / "gate.jsonl"
    rows = [
        {
            "inputs": {"messages": CONVERSATIONS[name]},
            "outputs": {"route": route},
            "metadata": {"example_id": name},
        }
        for name, route in (("greeting", "SIMPLE"), ("proof", "COMPLEX"), ("weather", "ENRICH"))
    ]
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    baseline = tmp / "gate-baseline.json"
    done = run_module(
        "evals.run",
        "--dataset",
        str(dataset),
        "--out",
        str(tmp / "gate0"),
        "--baseline",
        str(baseline),
        "--gate",
        "--no-progress",
        env=logged["env"],
        cwd=tmp,
    )
    assert done.returncode == 2 and "--save-baseline" in done.stderr  # no baseline yet: a usage error
    done = run_module(
        "evals.run",
        "--dataset",
        str(dataset),
        "--out",
        str(tmp / "gate1"),
        "--baseline",
        str(baseline),
        "--save-baseline",
        "--no-progress",
        env=logged["env"],
        cwd=tmp,
    )
    assert done.returncode == 0 and baseline.is_file(), done.stdout + done.stderr
    done = run_module(
        "evals.run",
        "--dataset",
        str(dataset),
        "--out",
        str(tmp / "gate2"),
        "--baseline",
        str(baseline),
        "--gate",
        "--no-progress",
        env=logged["env"],
        cwd=tmp,
    )
    assert done.returncode == 0 and "gate passed" in done.stdout, done.stdout + done.stderr

    edited = tmp / "worse-prompts"
    shutil.copytree(ROOT / "prompts", edited, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    with (edited / "routing" / "request.md").open("a") as handle:
        handle.write("\n#route=MODERATE\n")  # the simulator obeys a directive anywhere in the prompt
    done = run_module(
        "evals.run",
        "--dataset",
        str(dataset),
        "--out",
        str(tmp / "gate3"),
        "--baseline",
        str(baseline),
        "--gate",
        "--prompts-dir",
        str(edited),
        "--no-progress",
        env=logged["env"],
        cwd=tmp,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "gate FAILED: accuracy 0.000 vs baseline 1.000" in done.stdout


def test_resumed_replay_skips_finished_examples(logged, sim):
    """Results already on disk are reused: the simulator sees no classifier call for them."""
    import asyncio

    from core.settings import Settings
    from evals.replay import replay

    tmp = logged["tmp"]
    examples = [
        {"inputs": {"messages": CONVERSATIONS[n]}, "metadata": {"example_id": n}}
        for n in ("greeting", "proof", "weather")
    ]
    results = tmp / "resume.jsonl"
    results.write_text(json.dumps({"example_id": "greeting", "route": "SIMPLE", "steps": []}) + "\n")
    settings = Settings(**{key.lower(): value for key, value in logged["env"].items()})
    httpx.post(f"{sim.url}/sim/reset").raise_for_status()
    out = asyncio.run(replay(examples, settings=settings, results_path=results, progress=False, concurrency=2))
    assert [r["route"] for r in out] == ["SIMPLE", "COMPLEX", "ENRICH"]
    calls = httpx.get(f"{sim.url}/sim/calls").json()
    assert len(calls) == 2  # one classification each for the two unfinished examples
    assert len(results.read_text().splitlines()) == 3
