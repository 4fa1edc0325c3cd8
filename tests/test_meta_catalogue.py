# ruff: noqa: E501  (prompt texts as data)
"""The META catalogue (evals/meta_catalogue): data, renderer, detection, held-out folds, discovery."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from core.routing.meta import detect_meta
from core.routing.meta_index import DEFAULT_INDEX_PATH, TemplateIndex, default_index
from evals.meta_catalogue import build_index, evaluate, negatives, render
from evals.meta_catalogue.conversations import CONVERSATIONS
from evals.meta_catalogue.discover import discover_templates

TASKS = {
    "title",
    "tags",
    "follow_ups",
    "queries",
    "autocomplete",
    "emoji",
    "image_prompt",
    "tool_selection",
    "summary",
    "language",
    "emotion",
}
DELIVERIES = {
    "user",
    "system",
    "system+user",
    "system+fewshot+user",
    "system+history",
    "system+history+user",
    "history+user",
    "history+system",
    "roleplay+system",
}
REQUIRED_CLIENTS = {
    "openwebui",
    "librechat",
    "lobechat",
    "nextchat",
    "chatbox",
    "anythingllm",
    "cherrystudio",
    "continue",
    "sillytavern",
    "bigagi",
    "jan",
    "hfchatui",
}
#: Per client, the task kinds the catalogue must cover: every background request found in its
#: source (issue 26), not only chat titles.
CLIENT_TASKS = {
    "openwebui": {"title", "tags", "follow_ups", "queries", "autocomplete", "emoji", "image_prompt", "tool_selection", "summary"},
    "librechat": {"title", "language", "summary"},
    "lobechat": {"title", "summary", "emoji", "follow_ups", "tags", "language", "queries"},
    "nextchat": {"title", "summary"},
    "chatbox": {"title", "summary", "queries"},
    "continue": {"title", "summary"},
    "sillytavern": {"summary", "emotion", "image_prompt"},
    "cherrystudio": {"title", "queries", "language"},
    "anythingllm": {"tool_selection", "summary"},
    "bigagi": {"title", "image_prompt", "follow_ups"},
    "jan": {"title"},
    "hfchatui": {"title", "queries", "summary", "tool_selection"},
}
#: Older releases' title and search-query templates the catalogue must keep (issue 26).
OLDER_RELEASES = {
    "nextchat.topic.en.v1",
    "nextchat.topic.en.legacy",
    "nextchat.topic.cn.legacy",
    "chatbox.name_conversation.0.10.1",
    "chatbox.name_conversation.1.16",
    "librechat.legacy.title_chat_completion",
    "librechat.legacy.title_langchain",
    "hfchatui.title.summarization_ai.fewshot",
    "hfchatui.queries.fewshot",
    "jan.thread_title",
    "continue.chat_describer.v1",
    "lobechat.summary_title.zh",
    "openwebui.queries.0.4.6",
}

ENTRIES = render.load_catalogue()
ROWS = render.load_rendered()
NEGATIVES = negatives.load_negatives()


# --------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------


def test_catalogue_covers_the_clients_and_open_webui_releases() -> None:
    clients = {e["client"] for e in ENTRIES}
    assert REQUIRED_CLIENTS <= clients
    owui = json.loads((render.TEMPLATES_DIR / "openwebui.json").read_text(encoding="utf-8"))
    versions = owui["versions_examined"]
    assert versions[0].startswith("0.3.") and versions[-1].startswith("0.12.")
    minors = {".".join(v.split(".")[:2]) for v in versions}
    assert {"0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "0.10", "0.11", "0.12"} <= minors
    # Every Open WebUI task template changed at least once over these releases.
    per_task = Counter(e["task"] for e in ENTRIES if e["client"] == "openwebui")
    assert per_task["title"] >= 4 and per_task["queries"] >= 3 and per_task["follow_ups"] >= 2


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["id"])
def test_catalogue_entry_schema_and_provenance(entry: dict[str, Any]) -> None:
    assert entry["task"] in TASKS
    assert entry["delivery"] in DELIVERIES
    assert entry["licence"].strip()
    rel = entry["release"]
    assert rel["version"].strip() and rel["source"].strip()
    # A commit, or a tag of a published artifact, pins the text.
    assert rel.get("commit") or rel.get("tag") or "not pinned" in entry.get("note", "")
    if rel.get("commit") and not rel["commit"].startswith("parent of"):
        assert re.fullmatch(r"[0-9a-f]{40}", rel["commit"])
    assert entry["file"].strip() and entry["symbol"].strip()
    assert len(entry["template"].strip()) >= 30
    text = entry["template"] + entry.get("user_template", "") + "".join(m["content"] for m in entry.get("fewshot", []))
    for placeholder in entry.get("slots", {}):
        assert placeholder in text, placeholder
    if entry["delivery"] in ("system+user", "system+fewshot+user", "system+history+user"):
        assert entry.get("user_template")
    if entry.get("added"):  # templates added for issue 26 are all pinned to a commit
        assert re.fullmatch(r"[0-9a-f]{40}", rel.get("commit") or ""), entry["id"]


def test_catalogue_covers_each_clients_background_tasks() -> None:
    assert set(CLIENT_TASKS) == {e["client"] for e in ENTRIES}
    for client, tasks in CLIENT_TASKS.items():
        have = {e["task"] for e in ENTRIES if e["client"] == client}
        assert tasks <= have, (client, tasks - have)
    # Every task kind beyond titles comes from at least two clients, except the one client-only kinds.
    per_task = Counter()
    for task in TASKS:
        per_task[task] = len({e["client"] for e in ENTRIES if e["task"] == task})
    for task in ("title", "summary", "queries", "language", "image_prompt", "follow_ups", "tags", "emoji", "tool_selection"):
        assert per_task[task] >= 2, task
    assert {e["id"] for e in ENTRIES} >= OLDER_RELEASES


def test_later_additions_leave_earlier_renderings_alone() -> None:
    # Entries added later are rendered after the first catalogue, so the earlier rows keep their
    # conversations (and the negatives drawn from them stay the same).
    first = [e for e in ENTRIES if not e.get("added")]
    assert len(first) < len(ENTRIES), "the issue-26 additions carry an 'added' field"
    earlier = render.render_all(first)
    assert ROWS[: len(earlier)] == json.loads(json.dumps(earlier))
    assert all(r["entry"] in {e["id"] for e in ENTRIES if e.get("added")} for r in ROWS[len(earlier) :])


def test_catalogue_ids_are_unique() -> None:
    ids = [e["id"] for e in ENTRIES]
    assert len(ids) == len(set(ids))


# --------------------------------------------------------------------------
# Renderer
# --------------------------------------------------------------------------


def test_renderer_is_deterministic_and_committed_file_is_current() -> None:
    first = render.dumps_rows(render.render_all())
    assert first == render.dumps_rows(render.render_all())
    assert first == render.RENDERED.read_text(encoding="utf-8"), "run python -m evals.meta_catalogue.render"


def test_rendered_requests_cover_languages_lengths_and_edits() -> None:
    assert len(ROWS) >= 400
    assert {r["language"] for r in ROWS} == {"en", "de", "fr", "zh", "es", "ja"}
    longest = max(
        sum(len(m["content"]) for m in r["messages"] if isinstance(m["content"], str)) for r in ROWS
    )
    assert longest >= 30000
    variants = Counter(r["variant"] for r in ROWS)
    assert {"edited:reword", "edited:drop", "edited:format"} <= set(variants)
    assert {e["id"] for e in ENTRIES} == {r["entry"] for r in ROWS}
    for r in ROWS:
        assert r["messages"][-1]["role"] in ("user", "system")
        assert "{{MESSAGES" not in json.dumps(r["messages"])  # every history slot was filled


def test_owui_history_is_rendered_as_upper_case_role_lines() -> None:
    row = next(
        r
        for r in ROWS
        if r["entry"] == "openwebui.title.0.11.0" and r["variant"] == "default" and r["language"] == "en"
    )
    text = row["messages"][-1]["content"]
    assert "<chat_history>\nUSER: " in text and "\nASSISTANT: " in text
    assert row["release"] == "0.11.0"


def test_admin_edits_change_the_template_but_keep_its_variables() -> None:
    entry = next(e for e in ENTRIES if e["id"] == "openwebui.title.0.11.0")
    for rule in ("reword", "drop", "format"):
        edited = render.admin_edit(entry, rule, render._rng(rule))
        assert edited != entry["template"]
        assert "{{MESSAGES:END:2}}" in edited


# --------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------


def test_every_rendered_request_is_meta_with_its_task() -> None:
    missed = [r["id"] for r in ROWS if detect_meta(r["messages"]) is None]
    assert missed == []
    wrong = [r["id"] for r in ROWS if (m := detect_meta(r["messages"])) is not None and m.task != r["task"]]
    # Task accuracy is reported by make meta-eval; on the shipped index it must stay high.
    assert len(wrong) / len(ROWS) <= 0.03, wrong[:10]


@pytest.mark.parametrize("client", sorted(CLIENT_TASKS))
def test_every_task_of_each_client_is_detected_with_its_task(client: str) -> None:
    rows = [r for r in ROWS if r["client"] == client]
    for task in CLIENT_TASKS[client]:
        of_task = [r for r in rows if r["task"] == task]
        assert of_task, (client, task)
        got = [detect_meta(r["messages"]) for r in of_task]
        assert all(m is not None and m.task == task for m in got), (client, task)


def test_negatives_are_many_varied_and_current() -> None:
    assert len(NEGATIVES) >= 300
    kinds = Counter(n["kind"] for n in NEGATIVES)
    for kind in (
        "person_asks_title",
        "pasted_prompt_question_before",
        "pasted_prompt_question_after",
        "unrendered_template",
        "quoted_transcript_question",
        "json_output_request",
        "rag_template",
        "roleplay",
        "client_chat_system_prompt",
        "long_pasted_chat_personal_ask",
        "in_chat_personal_ask",
        "fixture",
        # issue 26: people asking for what the other background tasks produce
        "person_asks_emotion",
        "person_asks_language",
        "person_asks_image_prompt",
        "person_asks_queries",
        "person_asks_agent_name",
        "roleplay_ooc_ask",
        "frame_lookalike",
    ):
        assert kinds[kind] >= 3, kind
    assert negatives.with_fixtures(negatives.generate()) == NEGATIVES, (
        "run python -m evals.meta_catalogue.negatives"
    )


def test_no_negative_is_detected() -> None:
    false_positives = [(n["id"], m.rule) for n in NEGATIVES if (m := detect_meta(n["messages"])) is not None]
    assert false_positives == []


def test_shipped_index_file_is_built_from_the_catalogue() -> None:
    shipped = json.loads(DEFAULT_INDEX_PATH.read_text(encoding="utf-8"))
    assert shipped == json.loads(json.dumps(build_index.build())), (
        "run python -m evals.meta_catalogue.build_index"
    )
    assert default_index().template_clients() == {e["client"] for e in ENTRIES}


def test_the_index_is_injectable() -> None:
    # Continue's earlier prompt has no generic structure: only its exact rule and its template know it.
    row = next(r for r in ROWS if r["entry"] == "continue.chat_describer.v1" and r["variant"] == "default")
    assert detect_meta(row["messages"]) is not None
    empty = TemplateIndex([], frozenset(), 0.5)  # no templates, no client's exact rules
    assert detect_meta(row["messages"], index=empty) is None


# --------------------------------------------------------------------------
# Held-out evaluation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("client", sorted({e["client"] for e in ENTRIES}))
def test_fold_index_excludes_the_held_out_client(client: str) -> None:
    idx = evaluate.build_fold_index(ENTRIES, 0.5, [client])
    assert client not in idx.template_clients()
    assert not any(t.client == client or t.id.startswith(client + ".") for t in idx.templates)
    assert not idx.rules_enabled(client)
    assert idx.template_clients() == {e["client"] for e in ENTRIES} - {client}


def test_held_out_fold_really_loses_the_clients_knowledge() -> None:
    rows = [r for r in ROWS if r["entry"] == "continue.chat_describer.v1"]
    full = evaluate.build_fold_index(ENTRIES, 0.5)
    fold = evaluate.build_fold_index(ENTRIES, 0.5, ["continue"])
    other = evaluate.build_fold_index(ENTRIES, 0.5, ["nextchat"])
    assert evaluate.score(rows, full)["recall"] == 1.0
    assert evaluate.score(rows, other)["recall"] == 1.0
    assert evaluate.score(rows, fold)["recall"] == 0.0


def test_release_split_holds_out_only_old_open_webui_templates() -> None:
    kept, old = evaluate.release_split(ENTRIES)
    assert old and all(i.startswith("openwebui.") for i in old)
    idx = evaluate.build_fold_index(kept, 0.5)
    assert not {t.id for t in idx.templates} & old
    assert {"openwebui.title.0.11.0", "openwebui.queries.0.4.6"} <= {t.id for t in idx.templates}


def test_tuning_uses_only_the_training_side() -> None:
    # A threshold that lets a negative through is never chosen.
    t = evaluate.tune_threshold(
        ENTRIES, [r for r in ROWS if r["client"] != "chatbox"][:60], NEGATIVES[:80], ["chatbox"]
    )
    assert t in evaluate.THRESHOLDS
    assert evaluate.false_positives(NEGATIVES[:80], evaluate.build_fold_index(ENTRIES, t, ["chatbox"])) == []


# --------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------


def _chats() -> list[str]:
    return [
        "\n".join(f"{m['role']}: {m['content']}" for m in c)
        for convs in CONVERSATIONS.values()
        for c in convs
    ]


def test_discovery_finds_a_repeated_unknown_template_and_ignores_known_ones() -> None:
    unknown = "Lies den Chatverlauf und gib genau ein passendes Emoji zurück, sonst nichts. Verwende keine Erklärungen.\n\n{chat}"
    records: list[dict[str, Any]] = []
    for i, chat in enumerate(_chats()):
        records.append(
            {
                "session_id": f"u{i}",
                "route_label": "SIMPLE",
                "messages": [{"role": "user", "content": unknown.format(chat=chat)}],
            }
        )
    known = [r for r in ROWS if r["entry"] == "openwebui.title.0.11.0"]
    for i, r in enumerate(known):
        records.append({"session_id": f"k{i}", "route_label": "META", "messages": r["messages"]})
    for i in range(6):  # one person sending the same question again and again is not a template
        records.append(
            {
                "session_id": f"p{i}",
                "route_label": "SIMPLE",
                "messages": [
                    {
                        "role": "user",
                        "content": "Explain the difference between TCP and UDP in detail, with examples of protocols that use each one.",
                    }
                ],
            }
        )
    # Below the session threshold: seen twice only.
    rare = "Erzeuge bitte genau drei Schlagwörter für den folgenden Verlauf, getrennt durch Kommas, ohne weiteren Text.\n\n{chat}"
    for i, chat in enumerate(_chats()[:2]):
        records.append(
            {
                "session_id": f"r{i}",
                "route_label": "SIMPLE",
                "messages": [{"role": "user", "content": rare.format(chat=chat)}],
            }
        )

    found = discover_templates(records, min_sessions=3)
    assert len(found) == 1
    c = found[0]
    assert c["where"] == "last" and c["sessions"] == len(_chats()) and c["variants"] == len(_chats())
    assert c["common_prefix"].startswith("Lies den Chatverlauf") and len(c["common_prefix"]) >= 80
    assert c["routes"] == {"SIMPLE": len(_chats())}
    assert c["example"]["session_id"] == "u0"


def test_discovery_reads_session_records_messages_sent() -> None:
    template = "You are a naming service. Produce a three word label for the transcript that follows, output the label only.\n\n{chat}"
    records = [
        {
            "session_id": f"s{i}",
            "route_label": "SIMPLE",
            "user_query": "x",
            "steps": [
                {
                    "node": "generate",
                    "messages_sent": [{"role": "user", "content": template.format(chat=chat)}],
                }
            ],
        }
        for i, chat in enumerate(_chats()[:4])
    ]
    found = discover_templates(records)
    assert [c["sessions"] for c in found] == [4]
    assert found[0]["common_prefix"].startswith("You are a naming service.")
