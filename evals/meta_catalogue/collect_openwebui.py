"""Collect Open WebUI's task templates from unpacked PyPI wheels into ``templates/openwebui.json``.

Usage (network only for ``pip download``; nothing here runs in the tests)::

    for v in 0.3.21 0.3.22 ... 0.12.4; do
      mkdir -p /tmp/owui/$v && cd /tmp/owui/$v &&
      pip download --no-deps open-webui==$v -d . && unzip -q *.whl 'open_webui/*.py' 'open_webui/**/*.py'
    done
    python -m evals.meta_catalogue.collect_openwebui /tmp/owui

Every version directory is parsed with :mod:`ast` (nothing is imported or run). Task templates
are the module constants ``DEFAULT_*_PROMPT_TEMPLATE`` / ``DEFAULT_CONTEXT_COMPACTION_PROMPT``
(0.5.0 and later, ``open_webui/config.py`` and ``utils/context_compaction.py``) and, before
0.5.0, the literal ``template = \"\"\"...\"\"\"`` inside ``main.py``'s task handlers. Each distinct
text becomes one entry whose release is the first version that shipped it; ``releases`` lists
every version examined that shipped the same text. Versions before 0.3.21 have no
``open_webui`` package in their wheel and are not covered.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

#: constant or handler name -> task
TASKS = {
    "DEFAULT_TITLE_GENERATION_PROMPT_TEMPLATE": "title",
    "generate_title": "title",
    "DEFAULT_TAGS_GENERATION_PROMPT_TEMPLATE": "tags",
    "generate_chat_tags": "tags",
    "DEFAULT_FOLLOW_UP_GENERATION_PROMPT_TEMPLATE": "follow_ups",
    "DEFAULT_QUERY_GENERATION_PROMPT_TEMPLATE": "queries",
    "generate_search_query": "queries",
    "DEFAULT_AUTOCOMPLETE_GENERATION_PROMPT_TEMPLATE": "autocomplete",
    "DEFAULT_EMOJI_GENERATION_PROMPT_TEMPLATE": "emoji",
    "generate_emoji": "emoji",
    "DEFAULT_IMAGE_PROMPT_GENERATION_PROMPT_TEMPLATE": "image_prompt",
    "DEFAULT_TOOLS_FUNCTION_CALLING_PROMPT_TEMPLATE": "tool_selection",
    "chat_completion_tools_handler": "tool_selection",
    "DEFAULT_CONTEXT_COMPACTION_PROMPT": "summary",
}

#: placeholders of Open WebUI's utils/task.py and what the renderer puts there
SLOT_KINDS = {
    "{{CURRENT_DATE}}": "date",
    "{{TOOLS}}": "tools_json",
    "{{TYPE}}": "autocomplete_type",
    "{{PROMPT}}": "autocomplete_text",
    "{{PREVIOUS_SUMMARY}}": "empty",
    "{{COMPACTED_MESSAGES}}": "history:owui_compacted",
    "{{RECENT_MESSAGES}}": "history:owui_recent",
}


def _vkey(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def _templates(root: Path) -> dict[str, tuple[str, str]]:
    """name -> (file, text) for one unpacked wheel."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted(root.glob("open_webui/**/*.py")):
        rel = str(path.relative_to(root))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
                if (
                    name in TASKS
                    and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)
                ):
                    found[name] = (rel, node.value.value)
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name in TASKS:
                for node in ast.walk(fn):
                    if (
                        isinstance(node, ast.Assign)
                        and isinstance(node.targets[0], ast.Name)
                        and node.targets[0].id == "template"
                        and isinstance(node.value, ast.Constant)
                        and isinstance(node.value.value, str)
                    ):
                        found[fn.name] = (rel, node.value.value)
    return found


def slots_of(text: str) -> dict[str, str]:
    """The placeholders a template uses, with the renderer's kind for each."""
    import re

    slots: dict[str, str] = {}
    for m in re.finditer(r"\{\{[^{}]+\}\}", text):
        ph = m.group(0)
        if ph in SLOT_KINDS:
            slots[ph] = SLOT_KINDS[ph]
        elif ph.startswith("{{MESSAGES:END:"):
            slots[ph] = "history:owui:" + ph[len("{{MESSAGES:END:") : -2]
        elif ph.lower().startswith("{{prompt"):
            slots[ph] = "last_user"
        else:
            slots[ph] = "unknown"
    return slots


def collect(base: Path) -> dict[str, Any]:
    versions = sorted((p.name for p in base.iterdir() if (p / "open_webui").is_dir()), key=_vkey)
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for version in versions:
        for name, (file, text) in _templates(base / version).items():
            key = (TASKS[name], text)
            if key in entries:
                entries[key]["releases"].append(version)
                continue
            tool = TASKS[name] == "tool_selection"
            entries[key] = {
                "id": f"openwebui.{TASKS[name]}.{version}",
                "task": TASKS[name],
                "release": {
                    "version": version,
                    "commit": None,
                    "tag": f"v{version}",
                    "source": f"PyPI open_webui-{version}-py3-none-any.whl",
                },
                "releases": [version],
                "file": file,
                "symbol": name if name.isupper() else f"{name}: template",
                "delivery": "system+user" if tool else "user",
                "template": text,
                "slots": slots_of(text),
            }
            if tool:
                entries[key]["user_template"] = "History:\n{{HISTORY}}\nQuery: {{QUERY}}"
                entries[key]["slots"].update({"{{HISTORY}}": "history:owui_quoted", "{{QUERY}}": "last_user"})
                entries[key]["note"] = (
                    "utils/middleware.py get_tools_function_calling_payload (earlier: main.py)."
                )
    out = sorted(entries.values(), key=lambda e: (e["task"], _vkey(e["release"]["version"])))
    return {
        "client": "openwebui",
        "repository": "open-webui/open-webui",
        "licence": (
            "BSD-3-Clause (up to 0.6.5); Open WebUI License (BSD-3-Clause plus a branding clause) from 0.6.6"
        ),
        "editable": True,  # admins edit every task template in the settings
        "versions_examined": versions,
        "entries": out,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    base = Path(args[0])
    out = Path(__file__).parent / "templates" / "openwebui.json"
    data = collect(base)
    out.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(data['entries'])} templates from {len(data['versions_examined'])} releases -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
