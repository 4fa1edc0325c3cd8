"""Load the router's prompts: markdown files under this folder, addressed by name.

A prompt's name is its path without `.md` (`"routing/system"`). Prompts use
`str.format` placeholders only, so a stray brace in a prompt fails loudly in tests.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

PROMPTS_DIR = Path(__file__).parent


def available_prompts() -> list[str]:
    """List every prompt name under `prompts/`."""
    return sorted(str(p.relative_to(PROMPTS_DIR).with_suffix("")) for p in PROMPTS_DIR.rglob("*.md"))


@cache
def load_prompt(name: str) -> str:
    """Return the text of prompt `name` (e.g. `"primary/system"`), read once per process.

    Raises:
        FileNotFoundError: no such prompt; the message lists the valid names.
    """
    path = PROMPTS_DIR / f"{name}.md"
    if not path.is_file():
        raise FileNotFoundError(
            f"No prompt named {name!r} in {PROMPTS_DIR}. Expected one of: {available_prompts()}"
        )
    return path.read_text(encoding="utf-8").strip()


def render_prompt(name: str, **values: object) -> str:
    """Render prompt `name` with `str.format` placeholders filled from `values`."""
    return load_prompt(name).format(**values)


@cache
def prompts_digest() -> str:
    """Hash every prompt file (name and text), so a decision can name the prompts behind it."""
    digest = hashlib.sha256()
    for name in available_prompts():
        digest.update(name.encode())
        digest.update(load_prompt(name).encode())
    return digest.hexdigest()
