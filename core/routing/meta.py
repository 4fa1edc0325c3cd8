r"""Recognise chat clients' own "housekeeping" requests without calling a model.

Chat front-ends send requests of their own besides the user's turns: a chat
title, tags, follow-up suggestions, web-search queries, autocompletion, an
emoji, an image prompt, a summary for context compaction, a tool choice.
These are cheap tasks (short, machine-parsed outputs), so the router sends them
to a cheap model as META. No header names the task, so the decision is made
from the message text alone, with pure-Python rules.

Layers
------
1. **Vetoes** (every client): a known template variable still in the text, or a known
   template with a person's own line before it or a question about the prompt after it.
2. **Exact rules** below, one set per client (``_CLIENT_RULES``).
3. **Similarity** to the known templates of ``meta_templates.json`` (``meta_index``):
   3-token shingle containment over a bounded window, which survives an admin's rewording
   and removed sections.
4. **Generic structure** (``_rule_generic``), no client's wording: a housekeeping JSON
   contract or an impersonal, format-constrained instruction to title / summarise / tag /
   search / pick a tool, wrapped around a quoted transcript, in the system message over a
   transcript, or appended after the chat.

``detect_meta(messages, index=...)`` takes another :class:`~.meta_index.TemplateIndex`; an
index without a client also switches that client's exact rules off (the held-out
evaluation in ``evals/meta_catalogue``). The shipped index is loaded at import.

Approach of the exact rules
---------------------------
* Only the **last message** is examined (it must be a ``user`` message, or a
  ``system`` message because some clients append their instruction as a
  trailing system message, or send one system message only). A conversation
  ending in an ``assistant`` or ``tool`` message is never META. The **first
  system message** is also read, because some clients (LobeChat, Chatbox, the
  Open WebUI tool picker, SillyTavern's raw mode) put the task into the system
  prompt and the bare transcript into the user turn.
* Each text is cut to a window: the first ``HEAD_CHARS`` and the last
  ``TAIL_CHARS`` characters. The head holds the instructions of every known
  template; the tail is kept because Open WebUI's autocomplete template puts
  ``<text>`` after the chat history, and admins may move instructions below
  the history. So the cost is bounded however long the pasted history is.
* Rules look for the **shape** of a task, not only its first words, because
  Open WebUI admins can reword every template. An Open WebUI task needs two
  independent signals: an output contract (``{ "title": ...``,
  ``{ "tags": [``, ``{ "follow_ups": [``, ``{ "queries": [``, ``{ "text": ...``,
  ``{ "prompt": ...``) found in the *instructions* (outside the history block),
  plus either a ``<chat_history>`` block or a ``### Task:`` heading over an
  inlined ``USER:`` / ``ASSISTANT:`` transcript. Other clients' prompts are
  fixed strings in their source; their rules still require two distinctive
  phrases (or a phrase plus a structural marker), so a person who asks "give me
  a title for my essay" or pastes a transcript and asks about it does not
  match.
* Vetoes keep people who *talk about* such prompts out: an unrendered template
  (``<chat_history>`` followed by ``{{MESSAGES...}}``), and a question typed
  after a pasted, rendered prompt.
* Every check is a substring test or a precompiled regex over at most a few KB,
  and most rules bail out after one or two ``in`` tests, so a normal request
  costs a few microseconds.

Sources of the rules (prompt text read from each project's source)
------------------------------------------------------------------
* Open WebUI 0.12.4 (PyPI wheel): ``open_webui/config.py``
  ``DEFAULT_TITLE_GENERATION_PROMPT_TEMPLATE``,
  ``DEFAULT_TAGS_GENERATION_PROMPT_TEMPLATE``,
  ``DEFAULT_FOLLOW_UP_GENERATION_PROMPT_TEMPLATE``,
  ``DEFAULT_QUERY_GENERATION_PROMPT_TEMPLATE``,
  ``DEFAULT_AUTOCOMPLETE_GENERATION_PROMPT_TEMPLATE``,
  ``DEFAULT_EMOJI_GENERATION_PROMPT_TEMPLATE``,
  ``DEFAULT_IMAGE_PROMPT_GENERATION_PROMPT_TEMPLATE``,
  ``DEFAULT_TOOLS_FUNCTION_CALLING_PROMPT_TEMPLATE``;
  ``open_webui/utils/context_compaction.py`` ``DEFAULT_CONTEXT_COMPACTION_PROMPT``;
  rendering in ``open_webui/utils/task.py``. Open WebUI 0.6.5's older title
  template (emoji titles) has the same contract and is covered too.
  ``DEFAULT_RAG_TEMPLATE`` is a real answer and deliberately does not match.
* LibreChat: ``danny-avila/agents`` (npm ``@librechat/agents`` 3.6.11)
  ``src/utils/title.ts`` (completion and structured title prompts) with the
  ``User: ...\\nAI: ...`` conversation from ``src/run.ts``; the legacy
  ``api/app/clients/OpenAIClient.js`` / ``GoogleClient.js`` ``||>Title:`` prompts.
* LobeChat (``lobehub/lobe-chat`` ``packages/prompts/src/chains``):
  ``summaryTitle.ts`` (current ``<task>``/``<conversation>`` form, the earlier
  English form and the earlier Chinese form), ``summaryHistory.ts``,
  ``pickEmoji.ts``, ``summaryTags.ts``, ``followUpAction.ts``.
* Chatbox 1.20.0 (``chatboxai/chatbox`` ``src/renderer/packages/prompts.ts``
  and the newer ``src/shared/prompts.ts``): ``nameConversation`` (and the
  wording used up to v0.10.x), ``summarizeConversation`` (both wordings),
  ``contructSearchAction`` and related search-decision prompts.
* Continue (``continuedev/continue`` ``core/util/chatDescriber.ts``): both
  ``ChatDescriber.prompt`` wordings.
* NextChat 2.16.1 (``ChatGPTNextWeb/NextChat`` ``app/locales/en.ts`` and
  ``cn.ts`` ``Store.Prompt.Topic`` / ``Store.Prompt.Summarize``, current and
  earlier English wordings), sent from ``app/store/chat.ts``.
* SillyTavern 1.12.6 (``public/scripts/extensions/memory/index.js``
  ``defaultPrompt``): the Summarize extension, quiet-prompt and raw modes.

``tests/fixtures/meta_prompts/README.md`` lists the exact files and commits
the fixtures were rendered from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.routing.meta_index import SimilarityMatch, TemplateIndex, default_index

__all__ = ["MetaMatch", "detect_meta", "HEAD_CHARS", "TAIL_CHARS", "SYSTEM_HEAD_CHARS"]

#: Characters read from the start of the examined message. Every known template
#: has its instructions within the first ~2 KB.
HEAD_CHARS = 4096
#: Characters read from the end of the examined message (the part after a long
#: inlined history: Open WebUI's autocomplete ``<text>``, the closing tag).
TAIL_CHARS = 1024
#: Characters read from the start of the first system message; its end
#: (``TAIL_CHARS``) is read as well, since a tool list can push a template's
#: output contract far down.
SYSTEM_HEAD_CHARS = 2048


@dataclass(frozen=True)
class MetaMatch:
    """A recognised housekeeping request.

    Attributes:
        rule: Which rule fired, ``"<client>.<what>"``, e.g. ``"openwebui.title"``,
            ``"librechat.title"``, ``"lobechat.topic_title"``.
        task: The kind of task: ``"title"``, ``"tags"``, ``"follow_ups"``,
            ``"queries"``, ``"autocomplete"``, ``"emoji"``, ``"image_prompt"``,
            ``"summary"`` or ``"tool_selection"``.
    """

    rule: str
    task: str


# --------------------------------------------------------------------------
# Text extraction
# --------------------------------------------------------------------------


def _content_text(content: Any) -> str:
    """Return the text of an OpenAI message ``content`` (string or parts list).

    Non-text parts (images, audio, files) are skipped: the rules only read text.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, Mapping):
                if part.get("type") == "text":
                    text = part.get("text")
                    if isinstance(text, str):
                        texts.append(text)
            elif isinstance(part, str):  # tolerated by several SDKs
                texts.append(part)
        return "\n".join(texts)
    return ""


def _window(text: str, head: int, tail: int) -> str:
    """Keep the first ``head`` and last ``tail`` characters of ``text``.

    Joined with a newline so the tail's first line still starts a line for the
    ``(?m)^`` patterns.
    """
    if len(text) <= head + tail:
        return text
    return text[:head] + "\n" + text[-tail:]


class _Ctx:
    """The parts of a request the rules look at, computed once per request."""

    __slots__ = ("text", "low", "sys_low", "n_messages")

    def __init__(self, text: str, sys_text: str, n_messages: int) -> None:
        self.text = text  # examined (last) message, windowed, original case
        self.low = text.lower()
        self.sys_low = sys_text.lower()  # first system message, windowed; "" if none
        self.n_messages = n_messages


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
_CONTRACTS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
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
    for task, needle, pattern in _CONTRACTS:
        if needle in instructions and pattern.search(instructions):
            # The autocomplete contract is only meaningful with its <text> input.
            if task == "autocomplete" and "<text>" not in low:
                continue
            return task
    return None


def _rule_openwebui_task(c: _Ctx) -> MetaMatch | None:
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


def _rule_openwebui_compaction(c: _Ctx) -> MetaMatch | None:
    """Open WebUI context compaction (``DEFAULT_CONTEXT_COMPACTION_PROMPT``)."""
    low = c.low
    if "compacted" not in low and "kept in context" not in low:
        return None
    if not any(h in low for h in _COMPACTION_HEADINGS):
        return None
    if "summar" in low and _has_task_heading(low):
        return MetaMatch("openwebui.compaction", "summary")
    return None


def _rule_openwebui_emoji(c: _Ctx) -> MetaMatch | None:
    """Open WebUI voice-call emoji (``DEFAULT_EMOJI_GENERATION_PROMPT_TEMPLATE``)."""
    low = c.low
    if "facial expression" not in low or "emoji" not in low:
        return None
    if "{{prompt" in low:
        return None  # unrendered template
    if _EMOJI_MESSAGE.search(low):
        return MetaMatch("openwebui.emoji", "emoji")
    return None


def _rule_openwebui_function_calling(c: _Ctx) -> MetaMatch | None:
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


def _rule_librechat(c: _Ctx) -> MetaMatch | None:
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


def _rule_lobechat(c: _Ctx) -> MetaMatch | None:
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


def _rule_chatbox(c: _Ctx) -> MetaMatch | None:
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


def _rule_continue(c: _Ctx) -> MetaMatch | None:
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


def _rule_nextchat(c: _Ctx) -> MetaMatch | None:
    """NextChat topic (title) and memory summary, appended after the history."""
    low = c.low
    if len(low) > _NEXTCHAT_MAX_LEN or c.n_messages < 2:
        return None
    if any(p in low for p in _NEXTCHAT_TOPIC):
        return MetaMatch("nextchat.topic", "title")
    if any(p in low for p in _NEXTCHAT_SUMMARY):
        return MetaMatch("nextchat.summary", "summary")
    return None


def _rule_sillytavern(c: _Ctx) -> MetaMatch | None:
    """SillyTavern Summarize extension (trailing quiet prompt, or raw-mode system)."""
    for text in (c.low, c.sys_low):
        if "summarize the most important facts and events in the story so far" in text and (
            "nothing but the summary" in text
        ):
            return MetaMatch("sillytavern.summary", "summary")
    return None


#: The hand-written exact rules, each with the client whose source it was written from. An
#: index that leaves a client out (the held-out evaluation) turns that client's rules off.
_CLIENT_RULES: tuple[tuple[str, Callable[[_Ctx], MetaMatch | None]], ...] = (
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
_RULES: tuple[Callable[[_Ctx], MetaMatch | None], ...] = tuple(rule for _, rule in _CLIENT_RULES)


# --------------------------------------------------------------------------
# Similarity to known templates (survives an admin's edits)
# --------------------------------------------------------------------------

# A person's own words around a pasted prompt: a question, first person, a request to explain.
_PERSONAL = re.compile(
    r"[?？]|\b(?:i|i'm|i've|my|me|we|us|can|could|would|why|what|how|explain|debug|improve|"
    r"warum|wieso|ich|mein|meine|pourquoi|comment|je|mon|ma|mes|por qué|qué|cómo|mi|yo)\b"
    r"|为什么|怎么|什么|请问|吗|我|なぜ|どう|私|教えて|ですか|ますか|でしょうか"
)
# Words that point at a prompt (a person asking about the text above, not a chat turn).
_PROMPT_REF = re.compile(
    r"\b(?:prompt|template|instructions?|guidelines?|output format|tokens?)\b|提示词|指令|プロンプト|指示"
)


# A person pointing at a prompt they pasted ("translate this prompt", "review the following template").
_PASTE_REF = re.compile(
    r"\b(?:this|these|the following|following|below|my) (?:system )?(?:prompt|template|instructions?)\b"
    r"|这个提示词|下面这个|このプロンプト|dies(?:er|en) prompt|ce prompt|este prompt"
)


def _meta_question(low: str, after: int) -> bool:
    """Whether the text ends with a person's short question about the prompt above it.

    The question is a last paragraph past the template's text (which ends at ``after``).
    """
    cut = low.rstrip().rfind("\n\n")
    if cut < after:
        return False
    last = low[cut:].strip()
    if len(last) > 300 or last.startswith(("</", "```")) or re.match(r"[a-z][a-z ]{0,20}:", last):
        return False  # long, a closing tag or fence, or a labelled slot ("Prompt: ...")
    return _personal(last) and _PROMPT_REF.search(last) is not None


#: Preface longer than this many characters before a template that starts with fixed text:
#: the template was pasted into something else.
_MAX_PREFACE_CHARS = 400
#: A slotless template (sent as is, e.g. NextChat's) may carry a few words of rendered values;
#: a message with much more than that around it was written by a person.
_MIN_COVERED_SLOTLESS = 0.75


_NEEDS_NONE = frozenset({""})
_NEEDS_HISTORY = frozenset({"", "history"})
_NEEDS_TRANSCRIPT = frozenset({"", "transcript"})
# "Name: text" lines of a chat log (role names or characters' names).
_NAMED_LINE = re.compile(r"(?m)^[ \t]*[\w][\w .'-]{0,30}:[ \t]")


def _is_transcript(text: str) -> bool:
    """Whether a user turn is a chat log (what a client sends under a system instruction)."""
    head = text[:2000]
    if head.lstrip().startswith('[{"role"'):
        return True
    if _CONTAINER.search(head.lower()) or len(_XML_ROLE.findall(head.lower())) >= 2:
        return True
    return len(_NAMED_LINE.findall(head)) >= 2 or len(_ROLE_LINE.findall(head)) >= 1


def _personal(text: str) -> bool:
    return _PERSONAL.search(text) is not None


#: The similarity scan reads a smaller window than the rules (its cost grows with the text).
SIM_HEAD_CHARS = 2000
SIM_TAIL_CHARS = 500


def _sim_window(low: str) -> str:
    if len(low) <= SIM_HEAD_CHARS + SIM_TAIL_CHARS:
        return low
    return low[:SIM_HEAD_CHARS] + "\n" + low[-SIM_TAIL_CHARS:]


def _unrendered(low: str, index: TemplateIndex) -> bool:
    """Whether a template's variable sits in the instructions (not inside a quoted chat)."""
    pos = index.placeholder_at(low)
    if pos < 0:
        return False
    marks = [m.start() for m in (_CONTAINER.search(low), _ROLE_LINE.search(low), _XML_ROLE.search(low)) if m]
    if not marks:
        return True
    first = min(marks)
    # Before the quoted chat, or as the whole content of its container: "<chat_history>\n{{...".
    return pos < first or not low[low.find(">", first) + 1 : pos].strip()


def _guards_ok(low: str, m: SimilarityMatch, index: TemplateIndex) -> bool:
    """Whether a template found in ``low`` was sent as is, not pasted into a person's message."""
    t = m.template
    if t.starts_literal:
        preface = low[: m.first_offset]
        if len(preface) > _MAX_PREFACE_CHARS or (
            preface.strip() and (_personal(preface) or _PASTE_REF.search(preface))
        ):
            return False
    elif t.lead:
        pos = low.find(t.lead)
        if pos > 0 and (_personal(low[:pos]) or _PASTE_REF.search(low[:pos])):
            return False
    else:
        # The template starts with its slot (a transcript): a first line that is not part of a
        # transcript and reads like a person is the person's own.
        first = _first_line(low)
        if first and not _ROLE_LINE.match(first) and (_PERSON.search(first) or _PASTE_REF.search(first)):
            return False
    if t.slotless and index.covered_fraction(low, t) < _MIN_COVERED_SLOTLESS:
        return False
    if t.tail_literal:
        key = t.tail_literal[-40:]
        cut = low.rfind(key)
        if cut >= 0 and _personal(low[cut + len(key) :]):
            return False  # the person's own words after the pasted prompt
    if _meta_question(low, m.last_offset):
        return False
    return True


# --------------------------------------------------------------------------
# Generic structure of a housekeeping request (no client's wording)
# --------------------------------------------------------------------------

# A JSON output contract naming a housekeeping field.
_GENERIC_CONTRACT = re.compile(
    r'\{\s*"(title|tags|follow_ups|followups|queries|query|prompt|text|summary|emoji|topic|keywords|tool_calls)"\s*:\s*[\["]'
)
_CONTRACT_TASK = {
    "title": "title",
    "topic": "title",
    "tags": "tags",
    "keywords": "tags",
    "follow_ups": "follow_ups",
    "followups": "follow_ups",
    "queries": "queries",
    "query": "queries",
    "prompt": "image_prompt",
    "text": "autocomplete",
    "summary": "summary",
    "emoji": "emoji",
    "tool_calls": "tool_selection",
}
# Containers and role labels of a transcript quoted inside a prompt.
_CONTAINER = re.compile(r"<(chat_history|conversation|history|transcript|messages|chat|dialogue)>")
# The input a one-off job works on, as a tagged block that ends the message.
_TRAILING_BLOCK = re.compile(r"<(text|input)>(?:(?!<\1>)[\s\S]){0,4000}</\1>\s*$")
_ROLE_LINE = re.compile(
    r"(?im)^[ \t]*(?:\|\|>(?:user|response|message)|user|assistant|ai|human|bot|model|system)[ \t]*:"
)
_XML_ROLE = re.compile(r"<(user|assistant)>")
# A template variable left unrendered (Jinja/handlebars style, or a JS template literal).
_GENERIC_PLACEHOLDER = re.compile(r"\{\{\s*[a-z_][\w:.| -]{0,40}\}\}|\$\{[\w.()]{1,60}\}")
# A variable standing alone where content belongs: a line, a quoted block or a tag's content.
_BRACE_VAR = re.compile(r"\{\{\s*[a-z_][\w:.| -]{0,40}\}\}|\{[a-z_]{2,30}\}|\$\{[\w.()]{1,60}\}")


def _lone_placeholder(low: str) -> bool:
    if "{" not in low:
        return False
    for m in _BRACE_VAR.finditer(low):
        before = low[max(0, m.start() - 3) : m.start()].rstrip(" \t")
        after = low[m.end() : m.end() + 3].lstrip(" \t")
        if (not before or before.endswith(("\n", '"', "```", ">"))) and (
            not after or after.startswith(("\n", '"', "```", "<"))
        ):
            return True
    return False


# What a housekeeping instruction asks for: a kind of output and the conversation as its object
# (English and the other languages of the catalogue's templates).
_CHAT_WORD = re.compile(
    r"\b(?:conversation|chat|discussion|dialog(?:ue)?|thread|session|interactions?|story so far|the prompt)\b"
    r"|对话|会话|聊天|这句话|这段"
)
_INTENTS: tuple[tuple[str, re.Pattern[str], bool, tuple[str, ...]], ...] = (
    # (task, pattern, needs a word for the conversation too, substring screens)
    (
        "queries",
        re.compile(
            r"search quer(?:y|ies)|standalone (?:question|quer)"
            r"|rephrase[^.\n]{0,60}(?:question|quer)|web search"
        ),
        False,
        ("search", "standalone", "rephrase"),
    ),
    (
        "follow_ups",
        re.compile(r"follow[- ]?up (?:questions|suggestions|prompts|messages)|quick[- ]repl(?:y|ies)"),
        False,
        ("follow", "repl"),
    ),
    (
        "tool_selection",
        re.compile(
            r"\b(?:pick|choose|select)\b[^.\n]{0,60}\b(?:function|tool)s?\b|\b(?:function|tool)s? match"
        ),
        False,
        ("function", "tool"),
    ),
    ("tags", re.compile(r"\btags?\b|标签"), True, ("tag", "标签")),
    (
        "title",
        re.compile(r"\b(?:title|name|topic|heading)\b|标题|主题"),
        True,
        ("title", "name", "topic", "heading", "标题", "主题"),
    ),
    ("summary", re.compile(r"\bsummar(?:y|ize|ise|izing)\b|总结|摘要"), True, ("summar", "总结", "摘要")),
    (
        "emoji",
        re.compile(r"\b(?:single|one|an?|fitting|appropriate)\b[^.\n]{0,30}\bemojis?\b"),
        False,
        ("emoji",),
    ),
    (
        "language",
        re.compile(r"\bidentify the language|\blanguage code\b|\bdetect(?:ed)? (?:the )?language"),
        False,
        ("language",),
    ),
)
# Tasks a system instruction can carry over an ordinary user turn (the client's pre-step on
# the user's message, not a transcript): choosing a tool, deciding on a search, an emoji.
_SYSTEM_PRESTEP_TASKS = frozenset({"tool_selection", "queries", "emoji", "language"})
# "Your task is ..." / "### Task:": how client prompts frame a one-off job.
_TASK_FRAME = re.compile(r"^\s*(?:#+\s*)?task\s*:|\byour (?:only |sole )?task is\b")
# An output constraint: housekeeping prompts fix the shape of the answer. Each pattern has
# substring screens, so a text without any of them costs a few ``in`` tests.
_CONSTRAINT_PARTS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = tuple(
    (screens, re.compile(pattern))
    for screens, pattern in (
        (("only",), r"\bonly\b"),
        (("exclusively",), r"\bexclusively\b"),
        (("nothing",), r"nothing (?:else|but)"),
        (("no additional", "no extra", "no other"), r"no (?:additional|extra|other) (?:text|commentary)"),
        (("refrain from",), r"refrain from"),
        (("any additional commentary",), r"any additional commentary"),
        (("without",), r"without (?:any )?(?:explanation|additional|lead-in|quot|punctuation)"),
        (("no punct", "no quot", "no expl"), r"\bno (?:punctuation|quotes|quotation|explanations?)"),
        (
            ("not ", "n't ", "never "),
            r"\b(?:do not|don't|never) (?:\w+ ){0,2}"
            r"(?:explain|use|include|add|insert|output|write|mention|repeat)",
        ),
        (("word",), r"\b(?:\d+|one|two|three|four|five|six|ten)(?:-| to )?(?:\d+|five|six|ten)?[- ]words?\b"),
        (
            ("within", "limited to", "at most", "no more than", "maximum"),
            r"(?:within|limited to|at most|no more than|maximum) \d+",
        ),
        (("words", "characters", "tokens"), r"\d+ (?:words|characters|tokens) (?:or less|max)"),
        (("json",), r"in json|json (?:object|format)"),
        (("empty",), r"(?:return|respond with) an empty (?:string|list|array)"),
        (("concise",), r"\bconcise\b"),
        (("不要", "以内", "直接返回"), r"不要|以内|直接返回"),
    )
)


def _has_constraint(text: str) -> bool:
    return any(any(w in text for w in screens) and p.search(text) for screens, p in _CONSTRAINT_PARTS)


def _constraint_count(text: str) -> int:
    return sum(len(p.findall(text)) for screens, p in _CONSTRAINT_PARTS if any(w in text for w in screens))


# Words a person uses when asking for themselves (the clients' prompts are impersonal).
_PERSON = re.compile(
    r"[?？]|\b(?:i|i'm|i've|i'd|my|me|mine|can you|could you|would you|help me|for us"
    r"|boss|team|colleague|manager|client|blog|essay|article|email|report|wiki)\b"
)
# The trailing instruction refers to the chat it follows.
_BACK_WORDS = re.compile(r"\b(?:our|the|this|above)\b[^.\n]{0,30}$")


def _refers_back(text: str) -> bool:
    """Whether an instruction points at the chat it follows ("our conversation", "above", "so far")."""
    if (
        "above" in text
        or "so far" in text
        or any(w in text for w in ("这句话", "上述", "以上", "这段", "对话", "会话", "聊天"))
    ):
        return True
    return any(_BACK_WORDS.search(text, max(0, m.start() - 40), m.start()) for m in _CHAT_WORD.finditer(text))


_INSTRUCTION_CHARS = 700
_CONSTRAINT_CHARS = 1500
_TRAILING_MAX_CHARS = 2500


def _instruction_parts(text: str) -> tuple[str, str, bool]:
    """Split ``text`` (lower case) into (instructions before, after) a quoted transcript, if any."""
    cm = _CONTAINER.search(text)
    role_lines = _ROLE_LINE.finditer(text)
    rm = next(role_lines, None)
    two_roles = next(role_lines, None) is not None
    xm = _XML_ROLE.search(text)
    starts = [m.start() for m in (cm, rm, xm) if m]
    for fence in ("```", '"""'):
        f = text.find(fence)
        if f >= 0 and text.count(fence) >= 2:
            starts.append(f)
    if not starts:
        tb = _TRAILING_BLOCK.search(text)
        if tb:
            return text[: tb.start()], "", True
        return text, "", False
    first = min(starts)
    quoted = (
        cm is not None
        or two_roles
        or len(_XML_ROLE.findall(text)) >= 2
        or len(starts) > len([m for m in (cm, rm, xm) if m])
    )
    if not quoted:
        return text, "", False
    if cm:
        close = text.rfind("</" + cm.group(1) + ">")
    else:
        close = max(text.rfind("```"), text.rfind('"""'))
    after = ""
    if close > first:
        nl = text.find("\n", close)
        after = text[nl + 1 :] if nl >= 0 else ""
    return text[:first], after, True


# Cheap substring screens run before the regexes (most texts fail one of them).
_INTENT_WORDS = (
    "quer",
    "follow",
    "repl",
    "function",
    "tool",
    "tag",
    "title",
    "name",
    "topic",
    "heading",
    "summar",
    "emoji",
    "language",
    "标",
    "主题",
    "总结",
    "摘要",
)


def _housekeeping(instr: str) -> str | None:
    """The task an impersonal, format-constrained instruction asks for, if any.

    Impersonal: its first paragraph has no first person and no question (later paragraphs of a
    client's prompt may quote the user's own question or give examples).
    """
    stripped = instr.lstrip()
    if not stripped or not any(w in instr for w in _INTENT_WORDS):
        return None
    para = stripped[: stripped.find("\n\n")] if "\n\n" in stripped else stripped
    if _PERSON.search(para[:_INSTRUCTION_CHARS]):
        return None
    chat: bool | None = None
    task = None
    for name, pattern, needs_chat, screens in _INTENTS:
        if any(w in instr for w in screens) and pattern.search(instr):
            if needs_chat:
                if chat is None:
                    chat = _CHAT_WORD.search(instr) is not None
                if not chat:
                    continue
            task = name
            break
    if task is None or not (_has_constraint(instr) or _TASK_FRAME.search(instr)):
        return None
    return task


def _first_line(low: str) -> str:
    line = low.lstrip()[:300]
    nl = line.find("\n")
    return line if nl < 0 else line[:nl]


def _person_around(low: str) -> bool:
    """A person's own line before the prompt, or a question about the prompt after it."""
    first = _first_line(low)
    if first and not _ROLE_LINE.match(first) and not _CONTAINER.search(first):
        if (
            _PERSON.search(first)
            or _PASTE_REF.search(first)
            or (_personal(first) and _PROMPT_REF.search(first))
        ):
            return True
    return _meta_question(low, 0)


def _rule_generic(c: _Ctx, history_before: bool, last_role: str, person: bool) -> MetaMatch | None:
    """Housekeeping shapes shared by clients, with no client's wording.

    * A JSON output contract for a housekeeping field in instructions wrapped around a quoted
      transcript (``<chat_history>``-style container, role-labelled lines, a fenced block).
    * An impersonal, format-constrained instruction to title / summarise / tag / search the
      conversation (or to pick a tool), wrapped around a quoted transcript, or placed in the
      system message over a transcript in the user turn, or appended as the last message after
      the chat itself.

    ``person``: the text has a person's own first line, or ends with a question about the
    prompt above it (``_person_around``).
    """
    low = c.low
    before, after, quoted = _instruction_parts(low)
    if ("{" in before and _GENERIC_PLACEHOLDER.search(before)) or (
        "{" in c.sys_low and _GENERIC_PLACEHOLDER.search(c.sys_low[: _INSTRUCTION_CHARS * 3])
    ):
        return None  # an unrendered template
    if _lone_placeholder(low):
        return None  # "<chat_history>\n{{MESSAGES...}}", "\n\n{convo}": a slot left unrendered
    if quoted:
        if person:
            return None
        instr = before[-_INSTRUCTION_CHARS * 3 :] + "\n" + after[:_INSTRUCTION_CHARS]
        m = _GENERIC_CONTRACT.search(instr)
        if m:
            return MetaMatch("generic.json_contract", _CONTRACT_TASK[m.group(1)])
        task = _housekeeping(before[:_CONSTRAINT_CHARS]) or _housekeeping(after[-_INSTRUCTION_CHARS:])
        if task:
            return MetaMatch("generic.wrapped_transcript", task)
    s = c.sys_low
    if s and last_role == "user":
        transcript = quoted or _is_transcript(c.text)
        m = _GENERIC_CONTRACT.search(s)
        if m and transcript and _CONTRACT_TASK[m.group(1)] == "tool_selection":
            return MetaMatch("generic.system_instruction", "tool_selection")
        task = _housekeeping(s[:_CONSTRAINT_CHARS]) or _housekeeping(s[-_INSTRUCTION_CHARS:])
        if task and (task in _SYSTEM_PRESTEP_TASKS or transcript):
            return MetaMatch("generic.system_instruction", task)
    if not quoted and not person:
        # A leading instruction paragraph over the content it is about (a client's prompt
        # followed by the user's message): impersonal, at least two output constraints.
        cut = low.find("\n\n")
        head = low[:cut] if 0 < cut <= _INSTRUCTION_CHARS else ""
        if head and low[cut:].strip() and _constraint_count(head) >= 2:
            task = _housekeeping(head)
            if task in ("title", "emoji", "language"):
                return MetaMatch("generic.leading_instruction", task)
    if history_before and len(low) <= _TRAILING_MAX_CHARS and not quoted and not person:
        instr = (
            low
            if len(low) <= 2 * _INSTRUCTION_CHARS
            else low[:_INSTRUCTION_CHARS] + "\n" + low[-_INSTRUCTION_CHARS:]
        )
        task = _housekeeping(instr)
        if task and task != "tool_selection" and _refers_back(low):
            # A person can type this into the chat; a client-appended system message or a
            # prompt with several output constraints is the client's.
            if last_role == "system" or _constraint_count(low) >= 2:
                return MetaMatch("generic.trailing_instruction", task)
    return None


_DEFAULT_INDEX = default_index()  # loaded and precomputed once, at import

_EXAMINED_ROLES = frozenset({"user", "system", "developer"})
_SYSTEM_ROLES = frozenset({"system", "developer"})


def detect_meta(
    messages: Sequence[Mapping[str, Any]], index: TemplateIndex | None = None
) -> MetaMatch | None:
    """Say whether a chat request is a client's housekeeping task.

    Args:
        messages: OpenAI chat messages. ``content`` may be a string or a list of
            content parts; only ``{"type": "text"}`` parts are read.
        index: The known templates and threshold; the shipped ``meta_templates.json`` when
            ``None``. Clients absent from it also lose their hand-written exact rules.

    Returns:
        A :class:`MetaMatch` naming the rule and task, or ``None`` for a normal
        request, an empty list, or a conversation whose last message is not a
        ``user`` (or trailing ``system``) message, e.g. a ``tool`` result.
    """
    if not messages:
        return None
    last = messages[-1]
    if not isinstance(last, Mapping) or last.get("role") not in _EXAMINED_ROLES:
        return None
    text = _window(_content_text(last.get("content")), HEAD_CHARS, TAIL_CHARS)
    if not text.strip():
        return None
    idx = _DEFAULT_INDEX if index is None else index

    sys_text = ""
    if len(messages) > 1:
        first = messages[0]
        if isinstance(first, Mapping) and first.get("role") in _SYSTEM_ROLES:
            sys_text = _window(_content_text(first.get("content")), SYSTEM_HEAD_CHARS, TAIL_CHARS)

    ctx = _Ctx(text, sys_text, len(messages))
    # 0. A template pasted with its variables, or pasted between a person's own words: the
    #    person is asking about a prompt, whichever client it comes from.
    if _unrendered(ctx.low, idx) or (ctx.sys_low and _unrendered(ctx.sys_low, idx)):
        return None
    scan = idx.scan(_sim_window(ctx.low))
    pasted = scan.best(None, None)
    if pasted is not None and not _guards_ok(scan.low, pasted, idx):
        return None
    person = _person_around(ctx.low)
    if pasted is None and not ctx.sys_low and person:
        # No known template to locate the prompt in: a person's own first line or a question
        # about the prompt at the end still marks a pasted prompt.
        return None
    # 1. Exact rules of the clients the index knows.
    for client, rule in _CLIENT_RULES:
        if idx.rules_enabled(client):
            match = rule(ctx)
            if match is not None:
                return match
    # 2. Similarity to a known template (the examined message, then the system message).
    history_before = len(messages) >= 3 and any(
        isinstance(m, Mapping) and m.get("role") == "assistant" for m in messages[:-1]
    )
    found = scan.best("last", _NEEDS_HISTORY if history_before else _NEEDS_NONE)
    if found is not None and _guards_ok(scan.low, found, idx):
        return MetaMatch(f"similar.{found.template.id}", found.template.task)
    if ctx.sys_low and last.get("role") == "user":
        needs = _NEEDS_TRANSCRIPT if _is_transcript(ctx.text) else _NEEDS_NONE
        sys_scan = idx.scan(_sim_window(ctx.sys_low))
        found = sys_scan.best("system", needs)
        if found is not None and _guards_ok(sys_scan.low, found, idx):
            return MetaMatch(f"similar.{found.template.id}", found.template.task)
    # 3. Generic housekeeping structure.
    return _rule_generic(ctx, history_before, str(last.get("role")), person)
