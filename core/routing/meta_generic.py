"""META rules that know no client: similarity guards, and the generic shape of housekeeping.

The guards check a match against a known template; the generic rules recognise an instruction
wrapped around a quoted transcript, or a JSON contract of titles, tags or queries.

See `meta.py` for the approach. Precision first: a person's own words around a pasted prompt
veto a match.
"""

from __future__ import annotations

import re

from core.routing.meta_index import SimilarityMatch, TemplateIndex
from core.routing.meta_text import MetaMatch, MetaText

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


NEEDS_NONE = frozenset({""})
NEEDS_HISTORY = frozenset({"", "history"})
NEEDS_TRANSCRIPT = frozenset({"", "transcript"})
# "Name: text" lines of a chat log (role names or characters' names).
_NAMED_LINE = re.compile(r"(?m)^[ \t]*[\w][\w .'-]{0,30}:[ \t]")


def is_transcript(text: str) -> bool:
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


def sim_window(low: str) -> str:
    """The part of a text the similarity index reads: its head and its tail."""
    if len(low) <= SIM_HEAD_CHARS + SIM_TAIL_CHARS:
        return low
    return low[:SIM_HEAD_CHARS] + "\n" + low[-SIM_TAIL_CHARS:]


def unrendered(low: str, index: TemplateIndex) -> bool:
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


def guards_ok(low: str, m: SimilarityMatch, index: TemplateIndex) -> bool:
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
        if cut < 0 and t.fixed:
            return False  # a fixed template always ends with its tail: this text only resembles it
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
_CONTAINER = re.compile(r"<(chat_history|chathistory|conversation|history|transcript|messages|chat|dialogue)>")
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
        "emotion",
        re.compile(
            r"\bclassify the (?:emotion|sentiment|expression|mood)\b"
            r"|\b(?:emotion|expression)s? of the (?:last |following |given )?(?:message|text)\b"
        ),
        False,
        ("emotion", "sentiment", "expression", "mood"),
    ),
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
            r"|\bbest (?:suited |matching |match )?route\b|\bwhich route\b"
        ),
        False,
        ("function", "tool", "route"),
    ),
    (
        "image_prompt",
        re.compile(
            r"comma[- ](?:delimited|separated) list of (?:\w+ ){0,3}(?:keywords|tags|phrases)"
            r"|image generation prompt|text-to-image"
        ),
        False,
        ("comma", "image"),
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
# A negation just before an intent word: "do not summarize", "never add tags", "no title".
_NEGATED = re.compile(r"\b(?:never|not|don't|no|without)\s+(?:\w+\s+){0,2}$")
# The word itself: a prompt that summarises into a title, or detects the language for one, is a title task.
_TITLE_WORD = re.compile(r"\btitles?\b|标题")
# Tasks a system instruction can carry over an ordinary user turn (the client's pre-step on
# the user's message, not a transcript): choosing a tool, deciding on a search, an emoji.
_SYSTEM_PRESTEP_TASKS = frozenset({"tool_selection", "queries", "emoji", "language", "emotion"})
# A system instruction that treats the user turn as data, not as a request to answer: "do not try
# to answer it", "never answer the provided question", "the following text".
_DATA_MARK = re.compile(
    r"\b(?:do not|don't|never|not) (?:try to )?answer\b|\bnever answer\b|\bwithout answering\b"
    r"|\bthe following (?:text|message|input)\b|\bthe provided (?:question|text|message)\b"
)
# A completion-style frame: the message ends with a short label for the answer ("SUMMARY:",
# "New summary:", "Rephrased question:", "The name is:", "it's standalone query:").
_COMPLETION_TAIL = re.compile(r"(?:^|\n|[.,] )[^\n:?!]{1,40}:\s*$")
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
            r"(?:explain|use|include|add|insert|output|write|mention|repeat|reply|continue|roleplay|describe)",
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
        (("不要", "以内", "直接返回", "不超过"), r"不要|以内|直接返回|不超过"),
        (
            ("should include", "must include", "should contain", "structure your"),
            r"your (?:summary|response|answer|output|title) (?:should|must) (?:include|contain)"
            r"|structure your (?:response|answer|summary)",
        ),
        (("formatted as",), r"formatted as an? "),
        (("verbatim",), r"\bverbatim\b"),
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
        or "the story" in text
        or "last chat message" in text
        or "last message" in text
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
    "emotion",
    "sentiment",
    "expression",
    "mood",
    "comma",
    "image",
    "quer",
    "follow",
    "repl",
    "function",
    "tool",
    "route",
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


def _housekeeping(instr: str, constrained: bool = False, impersonal: bool = True) -> str | None:
    """The task an impersonal, format-constrained instruction asks for, if any.

    Impersonal: its first paragraph has no first person and no question (later paragraphs of a
    client's prompt may quote the user's own question or give examples). ``constrained``: the
    output is already fixed by the frame (a completion label, few-shot examples, the user turn
    treated as data). ``impersonal=False``: the text is the client's own (a trailing system
    message, a few-shot frame), so first person in it is not a person's.
    """
    stripped = instr.lstrip()
    if not stripped or not any(w in instr for w in _INTENT_WORDS):
        return None
    para = stripped[: stripped.find("\n\n")] if "\n\n" in stripped else stripped
    if impersonal and _PERSON.search(para[:_INSTRUCTION_CHARS]):
        return None
    chat: bool | None = None
    task, at = None, len(instr)
    # The task named first wins: a prompt states its job before it mentions other outputs
    # ("Create a summary ... the main topic ...", "... do not ask follow-up questions").
    for name, pattern, needs_chat, screens in _INTENTS:
        if not any(w in instr for w in screens):
            continue
        m = pattern.search(instr, 0, at)
        while m is not None and _NEGATED.search(instr, max(0, m.start() - 24), m.start()):
            m = pattern.search(instr, m.end(), at)  # "never summarize ...": not the task asked for
        if m is None:
            continue
        if needs_chat:
            if chat is None:
                chat = _CHAT_WORD.search(instr) is not None
            if not chat:
                continue
        task, at = name, m.start()
    if task in ("summary", "language") and _TITLE_WORD.search(instr):
        task = "title"  # "summarise the conversation into a title", "detect the language ... a title"
    if task is None or not (constrained or _has_constraint(instr) or _TASK_FRAME.search(instr)):
        return None
    return task


def _first_line(low: str) -> str:
    line = low.lstrip()[:300]
    nl = line.find("\n")
    return line if nl < 0 else line[:nl]


def person_around(low: str) -> bool:
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


def rule_generic(
    c: MetaText, history_before: bool, last_role: str, person: bool, fewshot: bool = False
) -> MetaMatch | None:
    """Housekeeping shapes shared by clients, with no client's wording.

    * A JSON output contract for a housekeeping field in instructions wrapped around a quoted
      transcript (``<chat_history>``-style container, role-labelled lines, a fenced block).
    * An impersonal, format-constrained instruction to title / summarise / tag / search the
      conversation (or to pick a tool), wrapped around a quoted transcript, or placed in the
      system message over a transcript in the user turn, or appended as the last message after
      the chat itself.

    * The same instruction in the system message over few-shot examples (``fewshot``: short
      example answers between the system message and the last user turn), or one that treats
      the user turn as data ("do not try to answer it", "the following text").
    * A completion-style frame (the message ends with a label such as ``Summary:``) counts as
      an output constraint.

    ``person``: the text has a person's own first line, or ends with a question about the
    prompt above it (``person_around``).
    """
    low = c.low
    before, after, quoted = _instruction_parts(low)
    completion = low.rstrip().endswith(":") and _COMPLETION_TAIL.search(low[-200:]) is not None
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
        task = _housekeeping(before[:_CONSTRAINT_CHARS], completion) or _housekeeping(
            after[:_CONSTRAINT_CHARS], completion
        )
        if task:
            return MetaMatch("generic.wrapped_transcript", task)
    s = c.sys_low
    if s and last_role == "user":
        # The conversation may sit in the user turn or in the system message itself.
        s_before, s_after, s_quoted = _instruction_parts(s)
        transcript = quoted or s_quoted or is_transcript(c.text)
        m = _GENERIC_CONTRACT.search(s)
        if m and transcript and _CONTRACT_TASK[m.group(1)] == "tool_selection":
            return MetaMatch("generic.system_instruction", "tool_selection")
        data = fewshot or _DATA_MARK.search(s[:_CONSTRAINT_CHARS]) is not None
        framed = data or completion
        # Read the instructions, not a conversation quoted inside the system message.
        head, tail = (s_before, s_after) if s_quoted else (s, s)
        task = _housekeeping(head[:_CONSTRAINT_CHARS], framed, not fewshot) or _housekeeping(
            tail[-_INSTRUCTION_CHARS:], framed, not fewshot
        )
        if task and (task in _SYSTEM_PRESTEP_TASKS or transcript or data):
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
    client_turn = last_role != "user"  # a trailing system message: only a client puts it there
    if history_before and len(low) <= _TRAILING_MAX_CHARS and not quoted and (client_turn or not person):
        instr = (
            low
            if len(low) <= 2 * _INSTRUCTION_CHARS
            else low[:_INSTRUCTION_CHARS] + "\n" + low[-_INSTRUCTION_CHARS:]
        )
        task = _housekeeping(instr, completion, impersonal=not client_turn)
        # A trailing system message is the client's own; one asking for image keywords describes
        # a character or a scene and needs no words pointing back at the chat.
        if task and task != "tool_selection" and ((client_turn and task == "image_prompt") or _refers_back(low)):
            # A person can type this into the chat; a client-appended system message or a
            # prompt with several output constraints is the client's.
            if last_role == "system" or _constraint_count(low) >= 2:
                return MetaMatch("generic.trailing_instruction", task)
    return None
