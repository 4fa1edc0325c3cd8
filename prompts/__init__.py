"""Load the router's prompts: markdown files under this folder, addressed by name.

A prompt's name is its path without `.md` (`"routing/system"`). Prompts use
`str.format` placeholders only, so a stray brace in a prompt fails loudly in tests.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

PROMPTS_DIR = Path(__file__).parent
"""The shipped prompts; `PROMPTS_DIR` in the environment points the loader at another copy."""


def _configured() -> str | None:
    from ai_router.settings import get_settings  # late: settings must not import prompts

    return get_settings().prompts_dir


def prompts_dir() -> Path:
    """The folder prompts are read from: the `PROMPTS_DIR` setting, else this package's folder.

    Evals replay the graph against an edited copy of the prompts this way, without
    touching the shipped files.
    """
    configured = _configured()
    return Path(configured) if configured else PROMPTS_DIR


def available_prompts() -> list[str]:
    """List every prompt name under the prompts folder."""
    folder = prompts_dir()
    return sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.md"))


def load_prompt(name: str) -> str:
    """Return the text of prompt `name` (e.g. `"primary/system"`), read once per process and folder.

    Raises:
        FileNotFoundError: no such prompt; the message lists the valid names.
    """
    # Keyed on the raw setting (None = shipped prompts): no path work on the request path.
    return _read_prompt(_configured(), name)


@cache
def _read_prompt(configured: str | None, name: str) -> str:
    folder = Path(configured) if configured else PROMPTS_DIR
    path = folder / f"{name}.md"
    if not path.is_file():
        raise FileNotFoundError(
            f"No prompt named {name!r} in {folder}. Expected one of: {available_prompts()}"
        )
    return path.read_text(encoding="utf-8").strip()


def reload_prompts() -> None:
    """Forget the prompts read so far (after editing the files in place)."""
    _read_prompt.cache_clear()
    _digest.cache_clear()


def render_prompt(name: str, **values: object) -> str:
    """Render prompt `name` with `str.format` placeholders filled from `values`."""
    return load_prompt(name).format(**values)


def prompts_digest() -> str:
    """Hash every prompt file (name and text), so a decision can name the prompts behind it."""
    return _digest(_configured())


@cache
def _digest(configured: str | None) -> str:
    digest = hashlib.sha256()
    for name in available_prompts():
        digest.update(name.encode())
        digest.update(load_prompt(name).encode())
    return digest.hexdigest()
