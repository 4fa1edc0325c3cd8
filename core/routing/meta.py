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
2. **Exact rules** below, one set per client (``meta_clients.CLIENT_RULES``).
3. **Similarity** to the known templates of ``meta_templates.json`` (``meta_index``):
   3-token shingle containment over a bounded window, which survives an admin's rewording
   and removed sections.
4. **Generic structure** (``meta_generic.rule_generic``), no client's wording: a housekeeping
   JSON contract or an impersonal, format-constrained instruction to title / summarise / tag /
   search / classify an emotion / write image keywords / pick a tool or route, wrapped around a
   quoted transcript, in the system message over a transcript, over few-shot examples or over
   a user turn it treats as data, or appended after the chat.

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

The similarity index (``meta_templates.json``) holds every template of the catalogue in
``evals/meta_catalogue/templates``, 103 of 12 clients with their files and commits, among them
the clients' other background requests: SillyTavern's expression classification and
image-generation prompts, chat-ui's search queries, reasoning status and route choice,
big-AGI's image prompt and follow-ups, LobeChat's tags, agent name, language detection and
query rewrite, LibreChat's summary buffer, Chatbox's knowledge-base search decision,
AnythingLLM's document summarizer, Continue's compaction, and older releases' titles and
queries. ``tests/fixtures/meta_prompts/README.md`` lists the exact files and commits
the fixtures were rendered from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.routing.meta_clients import CLIENT_RULES
from core.routing.meta_generic import (
    NEEDS_HISTORY,
    NEEDS_NONE,
    NEEDS_TRANSCRIPT,
    guards_ok,
    is_transcript,
    person_around,
    rule_generic,
    sim_window,
    unrendered,
)
from core.routing.meta_index import TemplateIndex, default_index
from core.routing.meta_text import HEAD_CHARS, SYSTEM_HEAD_CHARS, TAIL_CHARS, MetaMatch, MetaText, content_text, window

__all__ = ["MetaMatch", "detect_meta", "HEAD_CHARS", "TAIL_CHARS", "SYSTEM_HEAD_CHARS"]

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
    text = window(content_text(last.get("content")), HEAD_CHARS, TAIL_CHARS)
    if not text.strip():
        return None
    idx = _DEFAULT_INDEX if index is None else index

    sys_text = ""
    if len(messages) > 1:
        first = messages[0]
        if isinstance(first, Mapping) and first.get("role") in _SYSTEM_ROLES:
            sys_text = window(content_text(first.get("content")), SYSTEM_HEAD_CHARS, TAIL_CHARS)

    ctx = MetaText(text, sys_text, len(messages))
    # 0. A template pasted with its variables, or pasted between a person's own words: the
    #    person is asking about a prompt, whichever client it comes from.
    if unrendered(ctx.low, idx) or (ctx.sys_low and unrendered(ctx.sys_low, idx)):
        return None
    scan = idx.scan(sim_window(ctx.low))
    pasted = scan.best(None, None)
    if pasted is not None and not guards_ok(scan.low, pasted, idx):
        return None
    person = person_around(ctx.low)
    if pasted is None and not ctx.sys_low and person:
        # No known template to locate the prompt in: a person's own first line or a question
        # about the prompt at the end still marks a pasted prompt.
        return None
    # 1. Exact rules of the clients the index knows.
    for client, rule in CLIENT_RULES:
        if idx.rules_enabled(client):
            match = rule(ctx)
            if match is not None:
                return match
    # 2. Similarity to a known template (the examined message, then the system message).
    history_before = len(messages) >= 3 and any(
        isinstance(m, Mapping) and m.get("role") == "assistant" for m in messages[:-1]
    )
    found = scan.best("last", NEEDS_HISTORY if history_before else NEEDS_NONE)
    if found is not None and guards_ok(scan.low, found, idx):
        return MetaMatch(f"similar.{found.template.id}", found.template.task)
    if ctx.sys_low and last.get("role") == "user":
        needs = NEEDS_TRANSCRIPT if is_transcript(ctx.text) else NEEDS_NONE
        sys_scan = idx.scan(sim_window(ctx.sys_low))
        found = sys_scan.best("system", needs)
        if found is not None and guards_ok(sys_scan.low, found, idx):
            return MetaMatch(f"similar.{found.template.id}", found.template.task)
    # 3. Generic housekeeping structure.
    return rule_generic(ctx, history_before, str(last.get("role")), person, _fewshot(messages))


#: Example answers of a few-shot frame are short (a title, a query, a language code, tags).
_FEWSHOT_ANSWER_CHARS = 160
_FEWSHOT_MAX_MESSAGES = 24


def _fewshot(messages: Sequence[Mapping[str, Any]]) -> bool:
    """System message, then example turns whose assistant answers are all short, then the last user turn.

    Two example answers at least. A real chat has longer answers, or no system message first.
    """
    n = len(messages)
    if n < 4 or n > _FEWSHOT_MAX_MESSAGES:
        return False
    first = messages[0]
    if not isinstance(first, Mapping) or first.get("role") not in _SYSTEM_ROLES:
        return False
    answers = 0
    for m in messages[1:-1]:
        if not isinstance(m, Mapping):
            return False
        role = m.get("role")
        if role == "assistant":
            text = content_text(m.get("content"))
            if not text.strip() or len(text) > _FEWSHOT_ANSWER_CHARS:
                return False
            answers += 1
        elif role != "user":
            return False
    return answers >= 2
