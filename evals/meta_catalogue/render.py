"""Render the catalogue's templates into requests, the way each client sends them.

``python -m evals.meta_catalogue.render`` rewrites ``rendered.jsonl``. Deterministic: a fixed
seed per request id and a fixed date (2026-03-14), so the file only changes when the catalogue,
the conversations or these rules change.

For every catalogue entry it renders each of the six conversation languages with a short
history, one language (rotating) with a long history (a ~30,000-character paste), and, for
clients whose templates an admin can edit (Open WebUI, LibreChat, SillyTavern), three edited
variants made by the seeded rules in :func:`admin_edit`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

from evals.meta_catalogue.conversations import LANGUAGE_NAMES, LANGUAGES, LOCALES, conversation, strip_code

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
RENDERED = HERE / "rendered.jsonl"
SEED = 20260314
DATE_ISO = "2026-03-14"
DATE_US = "3/14/2026"

#: clients whose task prompts an admin or user can edit in settings (``"editable": true`` in their file)
EDITABLE = {
    json.loads(p.read_text(encoding="utf-8"))["client"]
    for p in TEMPLATES_DIR.glob("*.json")
    if json.loads(p.read_text(encoding="utf-8")).get("editable")
}

Message = dict[str, Any]


# --------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------


def load_catalogue(directory: Path = TEMPLATES_DIR) -> list[dict[str, Any]]:
    """All entries of all clients, each with ``client`` and ``licence`` copied in."""
    entries: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for e in data["entries"]:
            entries.append(
                {**e, "client": data["client"], "licence": data["licence"], "editable": data.get("editable", False)}
            )
    return entries


# --------------------------------------------------------------------------
# History formats (each client's own)
# --------------------------------------------------------------------------


def _text(m: Message) -> str:
    c = m.get("content")
    return c if isinstance(c, str) else ""


def fmt_history(kind: str, history: list[Message], names: tuple[str, str] = ("Dana", "Seraphina")) -> str:
    """Format ``history`` as the client does (``kind`` after ``history:``)."""
    parts = kind.split(":")
    name = parts[0]
    if name == "owui":  # utils/misc.py get_messages_content over the last n messages
        n = int(parts[1]) if len(parts) > 1 else 6
        return "\n".join(f"{m['role'].upper()}: {_text(m)}" for m in history[-n:])
    if name == "owui_quoted":  # get_tools_function_calling_payload: last 4 before the query
        return "\n".join(f'{m["role"].upper()}: """{_text(m)}"""' for m in history[:-1][-4:])
    if name == "owui_compacted":
        return "\n".join(f"{m['role'].upper()}: {_text(m)}" for m in history[:-2])
    if name == "owui_recent":
        return "\n".join(f"{m['role'].upper()}: {_text(m)}" for m in history[-2:])
    if name == "librechat":  # titlePromptTemplate "User: {input}\nAI: {output}"
        return f"User: {_text(history[0])}\nAI: {_text(history[1]) if len(history) > 1 else ''}"
    if name == "chatbox":  # first messages, each cut to 100 characters
        return "\n\n---------\n\n".join(_text(m)[:100] for m in history[:5])
    if name == "lobe_xml":
        return "\n".join(f"<{m['role']}>{_text(m)}</{m['role']}>" for m in history)
    if name == "lobe_xml_nl":
        return "\n".join(f"<{m['role']}>\n{_text(m)}\n</{m['role']}>" for m in history)
    if name == "role_colon_lower":
        return "\n".join(f"{m['role']}: {_text(m)}" for m in history)
    if name == "names":
        return "\n".join(f"{names[0] if m['role'] == 'user' else names[1]}: {_text(m)}" for m in history)
    if name == "bigagi":  # first line of the last 5 messages, cut to 100 characters
        lines = []
        for m in history[-5:]:
            first = _text(m).split("\n")[0]
            first = first[:100] + "..." if len(first) > 100 else first
            lines.append(f"- {'You' if m['role'] == 'user' else 'Assistant'}: {first}")
        return "\n".join(lines)
    if name == "chatbox_roles":  # summarizeConversation (v1.16): every message as "ROLE: text"
        return "\n\n---------\n\n".join(f"{m['role'].upper()}: {_text(m)}" for m in history)
    if name == "librechat_legacy":  # legacy titleConvo: ||>User: / ||>Response: of the first exchange
        answer = json.dumps(_text(history[1]) if len(history) > 1 else "", ensure_ascii=False)
        return f'||>User:\n"{_text(history[0])}"\n||>Response:\n"{answer}"'
    if name == "human_ai":  # LangChain getBufferString
        return "\n".join(f"{'Human' if m['role'] == 'user' else 'AI'}: {_text(m)}" for m in history)
    if name == "json_cherry":
        return json.dumps([{"role": m["role"], "content": _text(m)} for m in history], ensure_ascii=False)
    raise ValueError(f"unknown history format {kind!r}")


OWUI_TOOLS = [
    {
        "name": "get_current_weather",
        "description": "Get the current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
    {
        "name": "search_web",
        "description": "Search the web for a query",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
]


def _anythingllm_tools() -> str:
    out = ""
    for t in OWUI_TOOLS:
        out += (
            f"-----------\nFunction name: {t['name']}\nFunction Description: {t['description']}\n"
            f"Function parameters in JSON format:\n{json.dumps(t['parameters']['properties'], indent=4)}\n"
            "-----------\n"
        )
    return out


#: SillyTavern's default expression labels (extensions/expressions DEFAULT_EXPRESSIONS, 1.12.6).
EXPRESSION_LABELS = (
    "admiration amusement anger annoyance approval caring confusion curiosity desire disappointment "
    "disapproval disgust embarrassment excitement fear gratitude grief joy love nervousness optimism "
    "pride realization relief remorse sadness surprise neutral"
).split()
PERSONAS = (
    "You are a helpful assistant.",
    "You are a senior software engineer. Answer with working code and short explanations.",
    "You are a friendly travel planner who keeps answers short.",
)
ROUTES = [
    {"name": "casual_conversation", "description": "Greetings, small talk and simple questions"},
    {"name": "code_generation", "description": "Writing, fixing or explaining code"},
    {"name": "web_search", "description": "Questions about current events that need fresh information"},
]
PRIOR_SUMMARIES = {
    "en": "The user asked for help; the assistant gave first suggestions.",
    "de": "Der Nutzer bat um Hilfe; der Assistent machte erste Vorschläge.",
    "fr": "L'utilisateur a demandé de l'aide ; l'assistant a fait de premières suggestions.",
    "zh": "用户请求帮助，助手给出了初步建议。",
    "es": "El usuario pidió ayuda; el asistente dio las primeras sugerencias.",
    "ja": "ユーザーが助けを求め、アシスタントが最初の提案をした。",
}


def slot_value(kind: str, history: list[Message], lang: str, rng: random.Random) -> str:
    if kind.startswith("history:"):
        return fmt_history(kind[len("history:") :], history)
    if kind.startswith("literal:"):
        return kind[len("literal:") :]
    users = [m for m in history if m["role"] == "user"]
    assistants = [m for m in history if m["role"] == "assistant"]
    simple = {
        "date": DATE_ISO,
        "date_us": DATE_US,
        "locale": LOCALES[lang],
        "language_name": LANGUAGE_NAMES[lang],
        "words": "200",
        "empty": "",
        "lang_list": "en-us, zh-cn, zh-tw, ja-jp, ko-kr, fr-fr, de-de, es-es, ru-ru",
        "tools_json": json.dumps(OWUI_TOOLS),
        "tools_anythingllm": _anythingllm_tools(),
        "autocomplete_type": "General" if rng.random() < 0.6 else "Search Query",
        "date_long": "March 14, 2026",
        "date_long_yesterday": "March 13, 2026",
        "expression_labels": ", ".join(f'"{x}"' for x in EXPRESSION_LABELS),
        "char_name": "Seraphina",
        "user_name": "Dana",
        "prior_summary": PRIOR_SUMMARIES[lang],
        "routes_json": json.dumps(ROUTES),
    }
    if kind in simple:
        return simple[kind]
    if kind == "first_user":
        return _text(users[0])
    if kind == "first_assistant_quoted":
        return f'"{_text(assistants[0])}"' if assistants else '""'
    if kind == "first_user_nocode":
        return strip_code(_text(users[0]))
    if kind in ("last_user", "agent_description"):
        return _text(users[-1])
    if kind == "last_assistant":
        return _text(assistants[-1]) if assistants else ""
    if kind == "persona":  # drawn only for the templates that have it (the rng stream stays as it was)
        return PERSONAS[int(rng.random() * len(PERSONAS))]
    if kind == "previous_user_list":  # chat-ui: the earlier user questions as "- ..." lines
        return "\n".join(f"- {_text(m)}" for m in users[:-1])
    if kind == "reasoning_tail":  # chat-ui: the last 200 characters of a reasoning buffer
        return _text(assistants[-1])[-200:] if assistants else _text(users[-1])[-200:]
    if kind == "document":  # a document or section an agent summarises
        return "\n\n".join(_text(m) for m in assistants) or _text(users[-1])
    if kind == "image_prompts":  # LobeChat: numbered prompts of an image generation batch
        return "\n".join(f"{i + 1}. {_text(m)[:200]}" for i, m in enumerate(users[:2]))
    if kind == "autocomplete_text":
        words = _text(users[-1]).split()
        return " ".join(words[: max(2, len(words) // 2)])
    raise ValueError(f"unknown slot kind {kind!r}")


def fill(template: str, slots: dict[str, str], history: list[Message], lang: str, rng: random.Random) -> str:
    out = template
    # Longest placeholders first, so "{{PROMPT}}" does not eat part of another.
    for ph in sorted(slots, key=len, reverse=True):
        if ph in out:
            out = out.replace(ph, slot_value(slots[ph], history, lang, rng))
    return out


# --------------------------------------------------------------------------
# Admin edits (seeded, written rules)
# --------------------------------------------------------------------------

_REWORD = [
    ("Generate", "Create"),
    ("generate", "create"),
    ("concise", "short"),
    ("summarizing", "that sums up"),
    ("Guidelines", "Rules"),
    ("chat history", "conversation"),
    ("conversation", "discussion"),
    ("Prioritize", "Favor"),
    ("Respond", "Reply"),
    ("Return", "Give back"),
    ("relevant", "useful"),
    ("primary language", "main language"),
    ("title", "heading"),
    ("summary", "recap"),
    ("Summarize", "Sum up"),
]
_PERSONAS = [
    "You are the internal assistant of ACME GmbH. Follow the company style guide.",
    "Internal task for the chat workspace. Do not address the user directly.",
    "System maintenance request (automated).",
]
_FORMATS = {
    "title": (
        "Return only the title as plain text, no JSON.",
        "Answer with <title>...</title> and nothing else.",
    ),
    "tags": ("Return the tags as a comma-separated list.", "Answer with one tag per line."),
    "follow_ups": ("Return each suggestion on its own line, no numbering.",),
    "queries": ("Return one search query per line, or NONE.",),
}


def _placeholders(template: str, slots: dict[str, str]) -> list[str]:
    return [p for p in slots if p in template]


def admin_edit(entry: dict[str, Any], rule: str, rng: random.Random) -> str:
    """An edited copy of the entry's template (placeholders are kept)."""
    t: str = entry["template"]
    protected = _placeholders(t, entry.get("slots", {}))
    marks = {p: f"\x00{i}\x00" for i, p in enumerate(protected)}
    for p, m in marks.items():
        t = t.replace(p, m)
    if rule == "reword":
        for a, b in _REWORD:
            if rng.random() < 0.7:
                t = t.replace(a, b)
    elif rule == "drop":
        lines = t.split("\n")
        kept = []
        for line in lines:
            s = line.strip()
            droppable = s.startswith(("- ", "* ")) or re.match(r"^\d+\. ", s) or s.startswith("### Examples")
            if droppable and "\x00" not in line and rng.random() < 0.45:
                continue
            kept.append(line)
        t = "\n".join(kept)
        # Remove an example block whole when there is one.
        t = re.sub(r"### Examples:\n(?:- .*\n)+", "", t)
    elif rule == "format":
        opts = _FORMATS.get(entry["task"])
        new = rng.choice(opts) if opts else "Keep the answer short."
        t2 = re.sub(
            r"(?im)^(?:json format:|strictly return in json format:).*?(?=\n###|\n<|\Z)",
            new,
            t,
            count=1,
            flags=re.S,
        )
        t = t2 if t2 != t else t + "\n" + new
        t = rng.choice(_PERSONAS) + "\n\n" + t
    else:
        raise ValueError(rule)
    for p, m in marks.items():
        t = t.replace(m, p)
    return t


# --------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------

_ROLEPLAY_SYSTEM = "Write Seraphina's next reply in a fictional chat between Seraphina and Dana."


def build_messages(
    entry: dict[str, Any], template: str, history: list[Message], lang: str, rng: random.Random
) -> list[Message]:
    slots = entry.get("slots", {})
    text = fill(template, slots, history, lang, rng)
    delivery = entry["delivery"]
    if delivery == "user":
        return [{"role": "user", "content": text}]
    if delivery == "system":
        return [{"role": "system", "content": text}]
    if delivery == "system+user":
        return [
            {"role": "system", "content": text},
            {"role": "user", "content": fill(entry["user_template"], slots, history, lang, rng)},
        ]
    if delivery == "system+fewshot+user":
        return [
            {"role": "system", "content": text},
            *({**m, "content": fill(m["content"], slots, history, lang, rng)} for m in entry.get("fewshot", [])),
            {"role": "user", "content": fill(entry["user_template"], slots, history, lang, rng)},
        ]
    if delivery == "system+history":  # history up to the user's latest question
        return [{"role": "system", "content": text}, *history[:-1]]
    if delivery == "system+history+user":  # system template, the chat, then the user template
        return [
            {"role": "system", "content": text},
            *history,
            {"role": "user", "content": fill(entry["user_template"], slots, history, lang, rng)},
        ]
    if delivery == "history+user":
        return [*history, {"role": "user", "content": text}]
    if delivery == "history+system":
        return [*history, {"role": "system", "content": text}]
    if delivery == "roleplay+system":
        return [
            {"role": "system", "content": _ROLEPLAY_SYSTEM},
            *history,
            {"role": "system", "content": text},
        ]
    raise ValueError(f"unknown delivery {delivery!r}")


def _rng(key: str) -> random.Random:
    return random.Random(int(hashlib.sha256(f"{SEED}:{key}".encode()).hexdigest()[:16], 16))


def render_entry(entry: dict[str, Any], ordinal: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    long_lang = LANGUAGES[ordinal % len(LANGUAGES)]
    plan: list[tuple[str, str, str]] = [(lang, "short", "default") for lang in LANGUAGES]
    plan.append((long_lang, "long", "default"))
    if entry["client"] in EDITABLE:
        for i, rule in enumerate(("reword", "drop", "format")):
            plan.append((LANGUAGES[(ordinal + i + 1) % len(LANGUAGES)], "short", f"edited:{rule}"))
    for lang, length, variant in plan:
        rid = f"{entry['id']}|{lang}|{length}|{variant}"
        rng = _rng(rid)
        history = conversation(lang, ordinal + len(rows), length, rng)
        template = (
            entry["template"] if variant == "default" else admin_edit(entry, variant.split(":", 1)[1], rng)
        )
        rows.append(
            {
                "id": rid,
                "client": entry["client"],
                "release": entry["release"]["version"],
                "entry": entry["id"],
                "task": entry["task"],
                "variant": variant,
                "language": lang,
                "length": length,
                "messages": build_messages(entry, template, history, lang, rng),
            }
        )
    return rows


def catalogue_order(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries in rendering order: the first catalogue, then each later addition (``added``).

    Entries are numbered in this order (the ordinal picks each one's conversations), so adding
    templates leaves the rendering of the earlier ones, and the negatives drawn from them, as they were.
    """
    return sorted(entries, key=lambda e: e.get("added", ""))


def render_all(entries: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    entries = catalogue_order(load_catalogue() if entries is None else entries)
    rows: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        rows.extend(render_entry(e, i))
    return rows


def dumps_rows(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)


def load_rendered(path: Path = RENDERED) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    rows = render_all()
    RENDERED.write_text(dumps_rows(rows), encoding="utf-8")
    print(f"{len(rows)} requests -> {RENDERED}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
