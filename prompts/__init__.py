"""Load prompts: markdown files in a folder, addressed by name.

A prompt's name is its path without `.md` (`"routing/system"`). Prompts use `str.format`
placeholders only, so a stray brace in a prompt fails loudly in tests. This package is a
leaf: it reads the folder it is given (the shipped one by default) and imports nothing of
the router. Which folder a run uses is the graph's `RouterContext.prompts_dir` (the
`PROMPTS_DIR` setting by default), so evals can replay an edited copy side by side.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

PROMPTS_DIR = Path(__file__).parent
"""The shipped prompts."""


class PromptLibrary:
    """The prompts of one folder, each read once, with a digest of them all."""

    def __init__(self, folder: Path) -> None:
        """Read prompts from `folder` (nothing is read until a prompt is asked for)."""
        self.folder = folder
        self._texts: dict[str, str] = {}
        self._digest: str | None = None

    @staticmethod
    def at(folder: str | None = None) -> PromptLibrary:
        """The library of `folder` (None: the shipped prompts), one instance per folder."""
        return _library(folder or None)

    def names(self) -> list[str]:
        """Every prompt name in the folder."""
        return sorted(str(p.relative_to(self.folder).with_suffix("")) for p in self.folder.rglob("*.md"))

    def load(self, name: str) -> str:
        """The text of prompt `name` (e.g. `"primary/system"`).

        Raises:
            FileNotFoundError: no such prompt; the message lists the valid names.
        """
        text = self._texts.get(name)
        if text is None:
            path = self.folder / f"{name}.md"
            if not path.is_file():
                raise FileNotFoundError(f"No prompt named {name!r} in {self.folder}. Expected one of: {self.names()}")
            text = self._texts[name] = path.read_text(encoding="utf-8").strip()
        return text

    def render(self, name: str, **values: object) -> str:
        """Render prompt `name` with its `str.format` placeholders filled from `values`."""
        return self.load(name).format(**values)

    @property
    def digest(self) -> str:
        """A hash of every prompt (name and text): names the prompts behind a decision."""
        if self._digest is None:
            digest = hashlib.sha256()
            for name in self.names():
                digest.update(name.encode())
                digest.update(self.load(name).encode())
            self._digest = digest.hexdigest()
        return self._digest


@cache
def _library(folder: str | None) -> PromptLibrary:
    return PromptLibrary(Path(folder) if folder else PROMPTS_DIR)


def load_prompt(name: str) -> str:
    """The text of shipped prompt `name` (see `PromptLibrary.load`)."""
    return PromptLibrary.at().load(name)


def render_prompt(name: str, **values: object) -> str:
    """Render shipped prompt `name` (see `PromptLibrary.render`)."""
    return PromptLibrary.at().render(name, **values)
