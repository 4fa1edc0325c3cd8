"""Datasets: the shipped regression set, datasets from session records, labels, the prompts override."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from core.context import RouterContext
from core.settings import Settings
from evals.build_dataset import build_examples, read_jsonl
from evals.build_regression_set import DEFAULT_OUT, build_rows
from evals.label import interactive, load_labels, parse_answer, set_label
from prompts import PromptLibrary, load_prompt
from tests.conftest import ROOT


def test_regression_set_is_the_scripts_output_and_covers_every_route():
    rows = read_jsonl(DEFAULT_OUT)
    assert rows == json.loads(
        json.dumps(build_rows())
    )  # regenerate with python -m evals.build_regression_set
    assert len(rows) >= 300
    ids = [r["metadata"]["example_id"] for r in rows]
    assert len(set(ids)) == len(ids)
    routes = Counter(r["outputs"]["route"] for r in rows)
    assert routes == {
        "SIMPLE": 51,
        "MODERATE": 99,
        "COMPLEX": 52,
        "ENRICH": 69,
        "META": 33,
        "VISION": 5,
    }  # as SOURCES.md says
    assert all(r["metadata"]["source"] for r in rows)
    categories = {r["metadata"]["category"] for r in rows}
    assert {
        "greeting",
        "coding",
        "research_math",
        "research_science",
        "news",
        "prices",
        "sports",
        "weather",
        "versions",
        "follow_up",
        "meta_lookalike",
    } <= categories
    clients = {r["metadata"]["example_id"].split("_")[0] for r in rows if r["outputs"]["route"] == "META"}
    assert {
        "meta-openwebui",
        "meta-librechat",
        "meta-lobechat",
        "meta-chatbox",
        "meta-continue",
        "meta-nextchat",
    } <= clients
    by_id = {r["metadata"]["example_id"]: r for r in rows}
    assert by_id["followup-and_today_weather"]["inputs"]["messages"][-1]["content"] == "and today?"
    assert by_id["followup-and_today_weather"]["outputs"]["route"] == "ENRICH"
    assert by_id["lookalike-essay_title"]["outputs"]["route"] != "META"  # a person asking for a title


def record(session_id: str, query: str, label: str, **fields) -> dict:
    return {
        "session_id": session_id,
        "timestamp": "2026-11-25T10:00:00.000-08:00",
        "endpoint": "chat.completions",
        "user_query": query,
        "route": "primary",
        "route_label": label,
        "route_reason": "classifier",
        "classification_raw": label,
        "classification_ms": 5.0,
        "steps": [],
        "total_ms": 9.0,
        "error": None,
        "client": {"user_agent": "OpenAI/Python", "task": None},
        "content_mode": "full",
        "feedback": [],
        **fields,
    }


def write_records(folder: Path, records: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, rec in enumerate(records):
        path = folder / f"20261125T1000{99 - index:02d}.000000Z_{rec['session_id']}.json"  # newest first
        path.write_text(json.dumps(rec))
        os.utime(path, (time.time() - 3600 * index, time.time() - 3600 * index))  # older as the index grows


def ids(examples: list[dict]) -> list[str]:
    return [e["metadata"]["session_id"] for e in examples]


def test_dataset_filters_dedup_labels_and_privacy(tmp_path):
    sessions = tmp_path / "sessions"
    write_records(
        sessions,
        [
            record("s0", "What's the weather in Oslo today?", "ENRICH", route="enrich"),
            record("s1", "what's the weather in  oslo TODAY", "ENRICH", route="enrich"),  # near-identical
            record(
                "s2",
                "hello",
                "SIMPLE",
                feedback=[{"score": 2, "expected_route": "MODERATE", "received_at": "x"}],
            ),
            record("s3", "Generate a title", "META", route="meta", error="boom"),
            record("s4", None, "SIMPLE", content_mode="none"),  # logged without text: cannot be replayed
            record("s5", "forced", "COMPLEX", route_reason="forced"),
            record("s6", "old question", "MODERATE"),
            record("s7", "a replayed question", "MODERATE", dry_run=True),
        ],
    )
    labels = {"s1": {"expected_route": "ENRICH", "rating": 5}, "s2": {"expected_route": "SIMPLE"}}

    examples, skipped = build_examples(sessions, labels=labels)
    assert ids(examples) == ["s1", "s2", "s3", "s6"]  # s1 (labelled) stands for s0
    assert examples[0]["metadata"]["duplicates"] == 1 and examples[0]["metadata"]["duplicate_ids"] == ["s0"]
    assert skipped == {
        "no text logged (SESSION_LOG_CONTENT=none)": 1,
        "forced route": 1,
        "dry run (a routing test or an eval replay)": 1,
        "near-duplicate (merged)": 1,
    }
    by_id = {e["metadata"]["session_id"]: e for e in examples}
    assert by_id["s2"]["outputs"] == {"route": "SIMPLE"}  # the labels file wins over feedback
    assert by_id["s2"]["metadata"]["rating"] == 1.8  # feedback (2 of 10) still counts, on the 1-5 scale
    assert by_id["s6"]["outputs"] == {} and by_id["s6"]["metadata"]["history_from"].startswith("record")

    def only(**kwargs) -> list[str]:
        return ids(build_examples(sessions, labels=labels, filters=argparse.Namespace(**kwargs))[0])

    assert only(errors=True) == ["s3"]
    assert only(meta_only=True) == ["s3"]
    assert only(label="ENRICH") == ["s1"]
    assert only(route="primary") == ["s2", "s6"]
    assert only(labelled_only=True) == ["s1", "s2"]
    assert only(since=time.time() - 1800) == ["s0"]  # only s0 is from the last half hour
    assert only(until=time.time() - 5 * 3600) == ["s6"]
    assert only(client="curl") == []
    assert only(include_dry_runs=True, label="MODERATE") == ["s6", "s7"]

    truncated, _ = build_examples(sessions, content_ceiling="truncated", truncate_chars=5)
    assert truncated[0]["inputs"]["messages"][0]["content"].startswith("What'[")
    assert "more chars" in truncated[0]["inputs"]["messages"][0]["content"]
    with pytest.raises(ValueError, match="SESSION_LOG_CONTENT=none"):
        build_examples(sessions, content_ceiling="none")


def test_labels_file_and_answers(tmp_path):
    labels: dict = {}
    set_label(labels, "chatcmpl-1", "enrich", 2, "needed live data")
    assert labels["chatcmpl-1"]["expected_route"] == "ENRICH"
    with pytest.raises(ValueError, match="Expected one of"):
        set_label(labels, "chatcmpl-2", "FAST")
    assert parse_answer("c", "SIMPLE") == "COMPLEX"
    assert parse_answer("", "SIMPLE") == "SIMPLE"
    assert parse_answer("moderate", None) == "MODERATE"
    with pytest.raises(ValueError):
        parse_answer("zzz", "SIMPLE")
    assert load_labels(tmp_path / "missing.json") == {}

    answers = iter(["bogus", "x", "", "", "n", "q"])
    out = []
    saves = []
    done = interactive(
        [
            record("a", "### Task: title", "MODERATE"),
            record("b", "hi", "SIMPLE"),
            record("c", "skip me", "SIMPLE"),
            record("d", "never asked", "SIMPLE"),
        ],
        labels,
        lambda: saves.append(1),
        ask=lambda prompt: next(answers),
        out=type("W", (), {"write": lambda self, s: out.append(s), "flush": lambda self: None})(),
    )
    assert done == 1 and len(saves) == 1
    assert labels["a"]["expected_route"] == "META" and labels["a"]["rating"] is None
    assert "Unknown route 'bogus'" in "".join(out)
    assert "d" not in labels


def test_prompts_dir_setting_points_the_loader_at_another_copy(tmp_path, monkeypatch):
    (tmp_path / "routing").mkdir()
    (tmp_path / "routing" / "system.md").write_text("Edited routing prompt.\n")
    shipped = load_prompt("routing/system")
    monkeypatch.setenv("PROMPTS_DIR", str(tmp_path))
    prompts = RouterContext.from_settings(Settings()).prompts  # the setting, read into a run's context
    assert prompts.load("routing/system") == "Edited routing prompt."
    # An overlay: a prompt it does not hold is the shipped one; an unknown name still fails clearly.
    assert prompts.load("primary/system") == load_prompt("primary/system")
    with pytest.raises(FileNotFoundError, match="Expected one of: \\[.*'routing/system'"):
        prompts.load("nope/none")
    assert prompts.digest != PromptLibrary.at().digest
    assert PromptLibrary.at(str(tmp_path / "empty")).digest == PromptLibrary.at().digest  # no edits: same version
    # A request's own choice beats the environment (request > env > default).
    assert RouterContext.from_settings(Settings(), prompts_dir=str(ROOT / "prompts")).prompts.load(
        "routing/system") == shipped
    monkeypatch.undo()
    assert RouterContext.from_settings(Settings()).prompts.load("routing/system") == shipped
    assert load_prompt("routing/system") == shipped
    assert (ROOT / "prompts" / "routing" / "system.md").read_text().strip() == shipped
