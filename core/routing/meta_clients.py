"""Exact META rules for fixed templates, one set per chat client, written from each client's source.

See `meta.py` for the approach and the sources; `CLIENT_RULES` names the client of each rule, so
an index that leaves a client out (the held-out evaluation) turns its rules off.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from core.routing.meta_text import MetaMatch, MetaText

# --------------------------------------------------------------------------
# Open WebUI
# --------------------------------------------------------------------------

# "### Task:" (admins keep the Markdown heading style). Searched without a "^"
# anchor: a pattern that starts with a literal lets the regex engine skip ahead
# to each "#", whereas "(?m)^" is tried at every position of a long text.
_TASK_MARK = re.compile(r"#[ \t]*task[ \t]*:")
# Open WebUI inlines history as "ROLE: content" with the role upper-cased
# (utils/misc.py get_messages_content); the title task's empty answer is "ASSISTANT: ".
_TRANSCRIPT_UPPER = re.compile(r"(?m)^(?:USER|ASSISTANT|SYSTEM):(?: |$)")
# A template that was pasted, not rendered: the history slot is still a variable.
_UNRENDERED_HISTORY = re.compile(r"<chat_history>\s*\{\{")
# <type>/<text> blocks of the autocomplete template hold user text (may contain "?").
_IO_BLOCKS = re.compile(r"<(type|text)>.*?</\1>", re.S)

# Output contracts, checked in this order; the needle is a cheap substring
# test before the regex. Order matters only if an admin template names two.
CONTRACTS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("follow_ups", '"follow', re.compile(r'\{\s*"follow_?ups"\s*:\s*\[')),
    ("queries", '"queries"', re.compile(r'\{\s*"queries"\s*:\s*\[')),
    ("tags", '"tags"', re.compile(r'\{\s*"tags"\s*:\s*\[')),
    ("autocomplete", '"text"', re.compile(r'\{\s*"text"\s*:')),
    ("image_prompt", '"prompt"', re.compile(r'\{\s*"prompt"\s*:')),
    ("title", '"title"', re.compile(r'\{\s*"title"\s*:')),
)

_COMPACTION_HEADINGS = ("### messages being compacted", "### recent messages kept in context")
_EMOJI_MESSAGE = re.compile(r"(?m)^message:[ \t]*```")


def _has_task_heading(low: str) -> bool:
    """Whether ``low`` has a Markdown ``### Task:`` heading at the start of a line."""
    if "task" not in low:
        return False
    for m in _TASK_MARK.finditer(low):
        line_start = low.rfind("\n", 0, m.start()) + 1
        prefix = low[line_start : m.start()]
        # Only indentation and the rest of the "###" run may precede it.
        if len(prefix) <= 8 and not prefix.strip(" \t#"):
            return True
    return False


def _contract(instructions: str, low: str) -> str | None:
    """Return the task whose JSON output contract appears in ``instructions``."""
    for task, needle, pattern in CONTRACTS:
        if needle in instructions and pattern.search(instructions):
            # The autocomplete contract is only meaningful with its <text> input.
            if task == "autocomplete" and "<text>" not in low:
                continue
            return task
    return None


def _rule_openwebui_task(c: MetaText) -> MetaMatch | None:
    """Open WebUI title/tags/follow-ups/queries/autocomplete/image-prompt tasks.

    Needs an output contract in the instructions plus a ``<chat_history>`` block,
    or a ``### Task:`` heading over an inlined ``USER:``/``ASSISTANT:`` transcript.
    """
    low = c.low
    start = low.find("<chat_history>")
    if start >= 0:
        if _UNRENDERED_HISTORY.match(low, start):
            # The history slot is still "{{MESSAGES...}}": someone asking about a
            # template, not a rendered task. (Only this first tag counts: a real
            # history may itself quote an unrendered template.)
            return None
        end = low.rfind("</chat_history>")
        if end > start:
            before, after = low[:start], low[end + len("</chat_history>") :]
        else:  # closing tag cut off or missing: everything after is history
            before, after = low[:start], ""
        task = _contract(before, low)
        if task is not None:
            # Instructions above the history and a question typed below it: a
            # person pasted a rendered prompt and asks about it.
            rest = _IO_BLOCKS.sub("", after)
            cut = rest.find("<text>")  # an unclosed <text> (tail cut off)
            if cut >= 0:
                rest = rest[:cut]
            if "?" in rest:
                return None
        else:
            # Admins may put the history first and the instructions after it.
            task = _contract(after, low)
        if task is not None:
            return MetaMatch(f"openwebui.{task}", task)
        return None

    # No history tags: a "### Task:" heading over an inlined transcript.
    if not _has_task_heading(low):
        return None
    m = _TRANSCRIPT_UPPER.search(c.text)
    if m is None:
        return None
    if "<source" in low or "<context>" in low:
        return None  # Open WebUI's RAG template wraps a real question
    task = _contract(c.text[: m.start()].lower(), low)
    if task is not None:
        return MetaMatch(f"openwebui.{task}", task)
    return None


def _rule_openwebui_compaction(c: MetaText) -> MetaMatch | None:
    """Open WebUI context compaction (``DEFAULT_CONTEXT_COMPACTION_PROMPT``)."""
    low = c.low
    if "compacted" not in low and "kept in context" not in low:
        return None
    if not any(h in low for h in _COMPACTION_HEADINGS):
        return None
    if "summar" in low and _has_task_heading(low):
        return MetaMatch("openwebui.compaction", "summary")
    return None


def _rule_openwebui_emoji(c: MetaText) -> MetaMatch | None:
    """Open WebUI voice-call emoji (``DEFAULT_EMOJI_GENERATION_PROMPT_TEMPLATE``)."""
    low = c.low
    if "facial expression" not in low or "emoji" not in low:
        return None
    if "{{prompt" in low:
        return None  # unrendered template
    if _EMOJI_MESSAGE.search(low):
        return MetaMatch("openwebui.emoji", "emoji")
    return None


def _rule_openwebui_function_calling(c: MetaText) -> MetaMatch | None:
    """Open WebUI prompt-based tool choice (``DEFAULT_TOOLS_FUNCTION_CALLING_PROMPT_TEMPLATE``).

    The template is the system message; the user turn is ``History: ...`` /
    ``Query: ...`` (utils/middleware.py ``get_tools_function_calling_payload``).
    """
    s = c.sys_low
    if not s.startswith("available tools:") or '"tool_calls"' not in s:
        return None
    if c.low.startswith("query: ") or c.low.startswith("history:\n"):
        return MetaMatch("openwebui.function_calling", "tool_selection")
    return None


# --------------------------------------------------------------------------
# LibreChat
# --------------------------------------------------------------------------


def _rule_librechat(c: MetaText) -> MetaMatch | None:
    """LibreChat title prompts (agents package and the legacy clients)."""
    low = c.low
    if "title" not in low:
        return None
    # @librechat/agents defaultCompletionPrompt (TitleMethod.COMPLETION, the default).
    if "5-word-or-less title for the conversation" in low and "only return the title" in low:
        return MetaMatch("librechat.title", "title")
    # @librechat/agents defaultTitlePrompt (structured output / functions).
    if low.startswith("analyze this conversation and provide:") and (
        "a concise title in the detected language" in low
    ):
        return MetaMatch("librechat.title_structured", "title")
    # Legacy clients: "||>User: ... ||>Response: ... ||>Title:".
    if "||>title:" in low and ("||>user:" in low or "||>message:" in low):
        return MetaMatch("librechat.title_legacy", "title")
    return None


# --------------------------------------------------------------------------
# LobeChat
# --------------------------------------------------------------------------

_LOBE_TASK_TITLE = re.compile(r"<task>\s*generate a concise title[^<]*</task>")
# LobeChat's earlier title chain sends the bare transcript as "role: content".
_TRANSCRIPT_LOWER = re.compile(r"(?m)^(?:user|assistant|system|tool): ")


def _rule_lobechat(c: MetaText) -> MetaMatch | None:
    """LobeChat topic title, history summary, agent emoji/tags and follow-up chips."""
    low, s = c.low, c.sys_low
    if "<task>" in low and "<conversation>" in low and _LOBE_TASK_TITLE.search(low):
        return MetaMatch("lobechat.topic_title", "title")
    if "请总结上述对话为" in low and "标题" in low and "输出语言语种" in low:
        return MetaMatch("lobechat.topic_title_zh", "title")
    if (
        "<chat_history>" in low
        and "please summarize the above conversation and retain key information" in low
    ):
        return MetaMatch("lobechat.history_summary", "summary")
    if not s:
        return None
    if (
        "professional conversation summarizer" in s
        and "generate a concise title" in s
        and _TRANSCRIPT_LOWER.search(c.text)
    ):
        return MetaMatch("lobechat.topic_title", "title")
    if "you are an emoji expert" in s and "single emoji" in s:
        return MetaMatch("lobechat.pick_emoji", "emoji")
    if "会话标签总结" in s and low.startswith("输入: {"):
        return MetaMatch("lobechat.summary_tags", "tags")
    if "quick-reply suggestions" in s and "sidecar" in s and low.startswith("last assistant message:"):
        return MetaMatch("lobechat.follow_up_chips", "follow_ups")
    return None


# --------------------------------------------------------------------------
# Chatbox
# --------------------------------------------------------------------------

_CHATBOX_SEARCH_ENUMS = (
    '"enum":["search","proceed"]',
    '"enum":["search_web","proceed"]',
    '"enum":["search_knowledge_base","search_web","proceed"]',
)


def _rule_chatbox(c: MetaText) -> MetaMatch | None:
    """Chatbox conversation naming, compaction summary and search decision."""
    low = c.low
    if "conversation" in low:
        if "give this conversation a name" in low and (
            "the name is:" in low or "name this conversation in" in low
        ):
            return MetaMatch("chatbox.title", "title")
        if "name the conversation based on the chat records" in low and ("the conversation is named:" in low):
            return MetaMatch("chatbox.title", "title")
        if (
            "summary for continuing this conversation" in low
            and "not have access to our conversation history" in low
        ):
            return MetaMatch("chatbox.summary", "summary")
        if "handoff briefing" in low and "without access to the full history" in low:
            return MetaMatch("chatbox.summary", "summary")
    s = c.sys_low
    if (
        s
        and "you must answer with a json object that matches the json schema above" in s
        and any(e in s for e in _CHATBOX_SEARCH_ENUMS)
    ):
        return MetaMatch("chatbox.search_decision", "queries")
    return None


# --------------------------------------------------------------------------
# Continue, NextChat, SillyTavern
# --------------------------------------------------------------------------


def _rule_continue(c: MetaText) -> MetaMatch | None:
    """Continue's ChatDescriber (session title) prompt."""
    low = c.low
    if not low.startswith("given the following... please reply with a"):
        return None
    head = low[:300]
    if "title for the chat" in head or "short summary" in head:
        return MetaMatch("continue.title", "title")
    return None


_NEXTCHAT_TOPIC = (
    "please generate a four to five word title summarizing our conversation",
    "use four to five words to directly return the brief topic of this sentence",
    "使用四到五个字直接返回这句话的简要主题",
)
_NEXTCHAT_SUMMARY = (
    "summarize the discussion briefly in 200 words or less to use as a prompt for future context",
    "summarize the conversation briefly and use it as a prompt for subsequent context prompts",
    "简要总结一下对话内容，用作后续的上下文提示",
)
# NextChat sends the instruction alone as the last message; a longer message
# that quotes it is a person writing, not the client.
_NEXTCHAT_MAX_LEN = 600


def _rule_nextchat(c: MetaText) -> MetaMatch | None:
    """NextChat topic (title) and memory summary, appended after the history."""
    low = c.low
    if len(low) > _NEXTCHAT_MAX_LEN or c.n_messages < 2:
        return None
    if any(p in low for p in _NEXTCHAT_TOPIC):
        return MetaMatch("nextchat.topic", "title")
    if any(p in low for p in _NEXTCHAT_SUMMARY):
        return MetaMatch("nextchat.summary", "summary")
    return None


def _rule_sillytavern(c: MetaText) -> MetaMatch | None:
    """SillyTavern Summarize extension (trailing quiet prompt, or raw-mode system)."""
    for text in (c.low, c.sys_low):
        if "summarize the most important facts and events in the story so far" in text and (
            "nothing but the summary" in text
        ):
            return MetaMatch("sillytavern.summary", "summary")
    return None


#: The hand-written exact rules, each with the client whose source it was written from. An
#: index that leaves a client out (the held-out evaluation) turns that client's rules off.
CLIENT_RULES: tuple[tuple[str, Callable[[MetaText], MetaMatch | None]], ...] = (
    ("openwebui", _rule_openwebui_task),
    ("openwebui", _rule_openwebui_compaction),
    ("openwebui", _rule_openwebui_emoji),
    ("openwebui", _rule_openwebui_function_calling),
    ("librechat", _rule_librechat),
    ("lobechat", _rule_lobechat),
    ("chatbox", _rule_chatbox),
    ("continue", _rule_continue),
    ("nextchat", _rule_nextchat),
    ("sillytavern", _rule_sillytavern),
)
