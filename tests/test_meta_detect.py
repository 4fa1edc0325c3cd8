"""Tests for core.routing.meta: client housekeeping requests vs. real users."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from core.routing import meta as meta_detect
from core.routing import meta_clients, meta_generic, meta_text
from core.routing.meta import MetaMatch, detect_meta
from core.routing.meta_index import TemplateIndex

FIXTURES = Path(__file__).parent / "fixtures" / "meta_prompts"
POSITIVE_FILES = sorted(p for p in FIXTURES.glob("*.json") if p.name != "negatives.json")
NEGATIVES: list[dict[str, Any]] = json.loads((FIXTURES / "negatives.json").read_text(encoding="utf-8"))


def _load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _user_text(fixture: dict[str, Any]) -> str:
    """The (string) content of the fixture's last message."""
    content = fixture["messages"][-1]["content"]
    assert isinstance(content, str)
    return content


# --------------------------------------------------------------------------
# Fixture sanity
# --------------------------------------------------------------------------


def test_fixture_set_is_complete() -> None:
    # Open WebUI's main tasks plus at least two other clients must be covered.
    names = {p.stem for p in POSITIVE_FILES}
    for required in (
        "openwebui_title",
        "openwebui_title_empty_answer",
        "openwebui_tags",
        "openwebui_follow_ups",
        "openwebui_queries",
        "openwebui_autocomplete_general",
        "openwebui_emoji",
        "openwebui_image_prompt",
    ):
        assert required in names
    clients = {n.split("_", 1)[0] for n in names}
    assert len(clients - {"openwebui"}) >= 2
    assert len(NEGATIVES) >= 30


@pytest.mark.parametrize("path", POSITIVE_FILES, ids=lambda p: p.stem)
def test_fixture_shape(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data) >= {"source", "task", "messages"}
    assert data["source"].strip()
    assert isinstance(data["messages"], list) and data["messages"]
    # Rendered prompts must not contain template variables left unrendered.
    text = json.dumps(data["messages"], ensure_ascii=False)
    assert not re.search(r"\{\{(?:MESSAGES|prompt|PROMPT|TYPE|CURRENT_DATE|TOOLS)\b", text)


def test_title_empty_answer_fixture_ends_with_empty_assistant() -> None:
    text = _user_text(_load("openwebui_title_empty_answer.json"))
    assert text.endswith("ASSISTANT: \n</chat_history>")


# --------------------------------------------------------------------------
# Positives and negatives
# --------------------------------------------------------------------------


@pytest.mark.parametrize("path", POSITIVE_FILES, ids=lambda p: p.stem)
def test_positive_fixture_detected_with_right_task(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    match = detect_meta(data["messages"])
    assert match is not None, f"not detected: {data['source']}"
    assert match.task == data["task"]
    # The rule names the client the fixture came from.
    assert match.rule.split(".", 1)[0] == path.stem.split("_", 1)[0]


@pytest.mark.parametrize("case", NEGATIVES, ids=lambda c: c["id"])
def test_negative_not_detected(case: dict[str, Any]) -> None:
    assert detect_meta(case["messages"]) is None, case["why"]


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("openwebui_title.json", "openwebui.title"),
        ("openwebui_tags.json", "openwebui.tags"),
        ("openwebui_follow_ups.json", "openwebui.follow_ups"),
        ("openwebui_queries.json", "openwebui.queries"),
        ("openwebui_autocomplete_general.json", "openwebui.autocomplete"),
        ("openwebui_emoji.json", "openwebui.emoji"),
        ("openwebui_image_prompt.json", "openwebui.image_prompt"),
    ],
)
def test_openwebui_rule_names(name: str, rule: str) -> None:
    assert detect_meta(_load(name)["messages"]) == MetaMatch(rule, rule.split(".")[1])


# --------------------------------------------------------------------------
# Admin-overridden Open WebUI templates
# --------------------------------------------------------------------------

_HISTORY = (
    "<chat_history>\n"
    "USER: Which is better for a small team, Postgres or MongoDB?\n"
    "ASSISTANT: \n"
    "</chat_history>"
)


def test_admin_reworded_title_template_detected() -> None:
    text = (
        "You name chats for our company portal.\n"
        "Read the conversation and come up with a short descriptive name (max 5 words), "
        "in the language the user wrote in. No emojis.\n"
        'Reply with raw JSON only, exactly like: { "title": "<name>" }\n\n' + _HISTORY
    )
    assert detect_meta([{"role": "user", "content": text}]) == MetaMatch("openwebui.title", "title")


def test_admin_template_with_history_first_detected() -> None:
    text = (
        _HISTORY + "\n\nBased on the conversation above, produce a title of 3 words.\n"
        'Output JSON: {"title": "..."}'
    )
    assert detect_meta([{"role": "user", "content": text}]) == MetaMatch("openwebui.title", "title")


def test_admin_template_without_history_tags_detected() -> None:
    # Admin dropped the <chat_history> tags; the heading and inlined transcript remain.
    text = (
        "### Task:\nSuggest 3 tags for this chat.\n### Output:\n"
        'JSON format: { "tags": ["tag1", "tag2"] }\n### Chat History:\n'
        "USER: How do I descale an espresso machine?\n"
        "ASSISTANT: Use a citric acid solution and run it through the group head."
    )
    assert detect_meta([{"role": "user", "content": text}]) == MetaMatch("openwebui.tags", "tags")


def test_admin_reworded_template_in_other_language_detected() -> None:
    text = (
        "### Aufgabe:\nErstelle einen kurzen Titel für den Chatverlauf.\n"
        '### Ausgabe:\nJSON-Format: { "title": "dein Titel" }\n' + _HISTORY
    )
    assert detect_meta([{"role": "user", "content": text}]) == MetaMatch("openwebui.title", "title")


def test_contract_inside_history_does_not_decide_the_task() -> None:
    # A tags task over a chat that discussed {"title": ...} JSON stays a tags task.
    history = (
        "<chat_history>\n"
        'USER: Why does {"title": "x"} fail schema validation?\n'
        'ASSISTANT: The schema requires a "tags" array too.\n'
        "</chat_history>"
    )
    text = '### Task:\nGenerate tags.\n### Output:\nJSON format: { "tags": ["tag1"] }\n' + history
    assert detect_meta([{"role": "user", "content": text}]) == MetaMatch("openwebui.tags", "tags")


def test_history_with_json_but_no_contract_in_instructions_is_not_meta() -> None:
    text = (
        "<chat_history>\n"
        'USER: return { "title": "x" } please\n'
        "ASSISTANT: ok\n"
        "</chat_history>\n"
        "What went wrong in this exchange"
    )
    assert detect_meta([{"role": "user", "content": text}]) is None


def test_history_quoting_an_unrendered_template_still_detected() -> None:
    # A chat about Open WebUI templates gets a title: the history quotes "{{MESSAGES...}}"
    # but the task's own history slot is rendered.
    base = _user_text(_load("openwebui_title.json"))
    quoted = (
        "USER: my template has <chat_history>\n{{MESSAGES:END:2}}\n</chat_history> in it, is that right?\n"
    )
    text = base.replace("<chat_history>\n", "<chat_history>\n" + quoted, 1)
    assert detect_meta([{"role": "user", "content": text}]) == MetaMatch("openwebui.title", "title")


# --------------------------------------------------------------------------
# Message-list handling
# --------------------------------------------------------------------------


def test_workspace_system_prompt_prepended_does_not_break_detection() -> None:
    for name in ("openwebui_title_empty_answer.json", "openwebui_follow_ups.json", "openwebui_queries.json"):
        data = _load(name)
        messages = [
            {"role": "system", "content": "You are Acme Corp's internal assistant. Answer briefly."},
            *data["messages"],
        ]
        match = detect_meta(messages)
        assert match is not None and match.task == data["task"], name


def test_list_of_parts_content_works() -> None:
    data = _load("openwebui_title_empty_answer.json")
    text = _user_text(data)
    # Parts are joined with "\n"; split at a line break so the joined text is unchanged.
    cut = text.index("\n### Output:")
    parts = [{"type": "text", "text": text[:cut]}, {"type": "text", "text": text[cut + 1 :]}]
    assert detect_meta([{"role": "user", "content": parts}]) == MetaMatch("openwebui.title", "title")


def test_non_text_parts_are_ignored() -> None:
    text = _user_text(_load("openwebui_tags.json"))
    parts = [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "text", "text": text},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ]
    assert detect_meta([{"role": "user", "content": parts}]) == MetaMatch("openwebui.tags", "tags")


def test_last_message_not_user_is_none() -> None:
    title = _load("openwebui_title.json")["messages"][0]
    tool_call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    assert detect_meta([title, tool_call, {"role": "tool", "tool_call_id": "c1", "content": "ok"}]) is None
    assert detect_meta([title, {"role": "assistant", "content": '{"title": "Sourdough"}'}]) is None


def test_degenerate_inputs_are_none() -> None:
    assert detect_meta([]) is None
    assert detect_meta([{"role": "user", "content": ""}]) is None
    assert detect_meta([{"role": "user", "content": None}]) is None
    assert detect_meta([{"role": "user"}]) is None
    assert (
        detect_meta([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]) is None
    )
    assert detect_meta([{"role": "user", "content": 42}]) is None


def test_detect_meta_does_not_mutate_messages() -> None:
    data = _load("lobechat_topic_title.json")
    before = copy.deepcopy(data["messages"])
    detect_meta(data["messages"])
    assert data["messages"] == before


def test_plain_conversations_are_none() -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hi! Can you help me plan a birthday party?"},
        {"role": "assistant", "content": "Of course! How many guests?"},
        {"role": "user", "content": "About 20, mostly kids around 8 years old."},
    ]
    assert detect_meta(messages) is None


def test_nextchat_topic_needs_history() -> None:
    # The same instruction as the only message: nothing to title, treat as a person.
    data = _load("nextchat_topic_en.json")
    assert detect_meta(data["messages"][-1:]) is None


def test_lobechat_plain_title_needs_transcript() -> None:
    # The LobeChat title system prompt over a normal question is not the title chain.
    system = _load("lobechat_topic_title_plain.json")["messages"][0]
    assert detect_meta([system, {"role": "user", "content": "What is a closure in JavaScript?"}]) is None


# --------------------------------------------------------------------------
# Bounded work (no timing assertions)
# --------------------------------------------------------------------------


def test_only_head_and_tail_are_read() -> None:
    # A contract buried in the middle of a huge message is outside the window.
    filler = "lorem ipsum dolor sit amet " * 2000
    buried = (
        "### Task:\nplease read\n"
        + filler
        + '\nJSON format: { "title": "x" }\n<chat_history>\nUSER: hi\nASSISTANT: \n</chat_history>\n'
        + filler
    )
    assert len(buried) > 10 * (meta_detect.HEAD_CHARS + meta_detect.TAIL_CHARS)
    assert detect_meta([{"role": "user", "content": buried}]) is None

    window = meta_text.window(buried, meta_detect.HEAD_CHARS, meta_detect.TAIL_CHARS)
    assert len(window) == meta_detect.HEAD_CHARS + meta_detect.TAIL_CHARS + 1


def test_huge_history_still_detected() -> None:
    # A title task over a pasted 200 KB document: instructions in the head, closing tag in the tail.
    doc = "Quarterly revenue grew in every region. " * 5000
    text = _user_text(_load("openwebui_title_empty_answer.json"))
    text = text.replace("USER: ", "USER: " + doc, 1)
    assert len(text) > 200_000
    assert detect_meta([{"role": "user", "content": text}]) == MetaMatch("openwebui.title", "title")


def test_autocomplete_with_long_history_detected() -> None:
    # <text> comes after the history; it must still be found via the tail.
    text = _user_text(_load("openwebui_autocomplete_general.json"))
    text = text.replace("USER: ", "USER: " + ("x" * 30_000) + " ", 1)
    assert detect_meta([{"role": "user", "content": text}]) == MetaMatch(
        "openwebui.autocomplete", "autocomplete"
    )


def test_regexes_are_precompiled() -> None:
    # Guard against per-call re.compile creeping into the hot path.
    for module in (meta_clients, meta_generic):
        patterns = [v for v in vars(module).values() if isinstance(v, re.Pattern)]
        assert len(patterns) >= 5, module.__name__
    for _task, _needle, pattern in meta_clients.CONTRACTS:
        assert isinstance(pattern, re.Pattern)


# --------------------------------------------------------------------------
# Generic shapes of the other background tasks (issue 26), with no client's templates
# --------------------------------------------------------------------------

_NO_CLIENTS = TemplateIndex([], frozenset(), 0.5)  # generic rules only
_CHAT = [
    {"role": "user", "content": "My sourdough starter is sluggish since I keep it in the fridge. What now?"},
    {"role": "assistant", "content": "Feed it twice a day at room temperature for two or three days."},
    {"role": "user", "content": "Can I bake tomorrow if I feed it tonight?"},
    {"role": "assistant", "content": "Probably not at full strength; do a late 1:5:5 feed."},
]


def test_fewshot_frame_with_a_housekeeping_system_instruction_is_meta() -> None:
    messages = [
        {
            "role": "system",
            "content": "You pick search keywords. Give me the keywords for my question, nothing else.",
        },
        {"role": "user", "content": "How tall is the Eiffel tower?"},
        {"role": "assistant", "content": "Eiffel tower height"},
        {"role": "user", "content": "Who won the 2018 world cup?"},
        {"role": "assistant", "content": "2018 world cup winner"},
        {"role": "user", "content": "What time is sunset in Lisbon today?"},
    ]
    # "web search" names the task; the short example answers frame the last turn as data.
    messages[0]["content"] = "You write web search queries for the user's question. " + messages[0]["content"]
    assert detect_meta(messages, index=_NO_CLIENTS) == MetaMatch("generic.system_instruction", "queries")
    # The same system prompt over a real chat with long answers is not a few-shot frame.
    long_answers = [
        m if m["role"] != "assistant" else {**m, "content": m["content"] + " " + "x" * 200} for m in messages
    ]
    assert detect_meta(long_answers, index=_NO_CLIENTS) is None


def test_system_instruction_treating_the_user_turn_as_data_is_meta() -> None:
    system = (
        "The task is to generate conversation titles based on text snippets. You'll never answer the "
        "provided question directly, but instead summarize the user's request into a short title."
    )
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": "How do I descale an espresso machine?"},
    ]
    assert detect_meta(messages, index=_NO_CLIENTS) == MetaMatch("generic.system_instruction", "title")
    # Without the data marker, a title instruction over an ordinary question is a person's chat.
    plain = system.split(" You'll never")[0] + " Keep it short."
    assert detect_meta([{"role": "system", "content": plain}, messages[1]], index=_NO_CLIENTS) is None


def test_emotion_classification_over_a_message_is_meta() -> None:
    system = 'Classify the emotion of the last message. Output just one word, e.g. "joy" or "anger".'
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "*She smiles and hugs Dana.*"}]
    assert detect_meta(messages, index=_NO_CLIENTS) == MetaMatch("generic.system_instruction", "emotion")
    mine = "What emotion does this message from my friend express? Pick one word.\n\nI can't believe you did that."
    assert detect_meta([{"role": "user", "content": mine}], index=_NO_CLIENTS) is None


def test_trailing_system_message_asking_for_image_keywords_is_meta() -> None:
    ask = (
        "Ignore previous instructions and provide a detailed description of Dana's physical appearance "
        "as a comma-delimited list of keywords. Do not write in full sentences."
    )
    rp = [{"role": "system", "content": "Write Seraphina's next reply."}, *_CHAT]
    assert detect_meta([*rp, {"role": "system", "content": ask}], index=_NO_CLIENTS) == MetaMatch(
        "generic.trailing_instruction", "image_prompt"
    )
    # The player typing an out-of-character request is a person.
    ooc = "(OOC: describe Seraphina's outfit as a list of keywords, I want to draw her.)"
    assert detect_meta([*rp, {"role": "user", "content": ooc}], index=_NO_CLIENTS) is None


def test_completion_label_counts_as_an_output_constraint() -> None:
    text = (
        "Summarize the conversation by integrating new lines into the current summary.\n\n"
        "New lines:\nHuman: Why is it beneficial?\nAI: It helps humans achieve their potential.\n\nNew summary:"
    )
    assert detect_meta([{"role": "user", "content": text}], index=_NO_CLIENTS) is not None
    assert detect_meta([{"role": "user", "content": text.rsplit("\n\n", 1)[0]}], index=_NO_CLIENTS) is None


def test_fixed_template_needs_its_tail_and_ties_do_not_depend_on_hashing() -> None:
    # AnythingLLM's summarizer prompt ends with "SUMMARY:"; a person's similar request does not.
    client = (
        "\n      Write a detailed summary of the following text for a research purpose:\n"
        '      "Oak desks cost 329 EUR."\n      SUMMARY:\n      '
    )
    person = (
        "Write a detailed summary of the following text for my research on solar panels:\n\n"
        "Oak desks cost 329 EUR."
    )
    assert detect_meta([{"role": "user", "content": client}]) is not None
    assert detect_meta([{"role": "user", "content": person}]) is None
    # A person's question before Jan's prompt: the shared words "here is the" in the question do
    # not make the template start at the top of the message.
    pasted = (
        "Here is the prompt my chat UI sends to generate titles. Why does my local model answer it with markdown?\n\n"
        'Summarize in a 10-word Title. Give the title only. Here is the message: "How do I descale a kettle?"'
    )
    assert detect_meta([{"role": "user", "content": pasted}]) is None
