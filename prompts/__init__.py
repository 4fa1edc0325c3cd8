"""Load prompts: markdown files in a folder, addressed by name.

A prompt's name is its path without `.md` (`"routing/system"`). Prompts use `str.format`
placeholders only, so a stray brace in a prompt fails loudly in tests. This package is a
leaf: it reads the folder it is given (the shipped one by default) and imports nothing of
the router. Which folder a run uses is the graph's `RouterContext.prompts_dir` (the
`PROMPTS_DIR` setting by default), so evals can replay an edited copy side by side.

Any other folder is an overlay over the shipped prompts: a prompt found there wins, every
other prompt is the shipped one (a missing folder means the shipped prompts). So the
operator's folder holds only what was edited (`prompts.overlay` writes it, with a history),
and the shipped folder is never written.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

PROMPTS_DIR = Path(__file__).parent
"""The shipped prompts."""


class PromptLibrary:
    """The prompts of one folder, each read once, with a digest of them all."""

    def __init__(self, folder: Path, base: Path | None = None) -> None:
        """Read prompts from `folder`, then `base` for any it lacks (nothing is read until asked for)."""
        self.folder = folder
        self.base = base
        self._texts: dict[str, str] = {}
        self._digest: str | None = None

    def reload(self) -> None:
        """Forget what was read: the next load reads the files again (after an overlay edit)."""
        self._texts = {}
        self._digest = None

    @staticmethod
    def at(folder: str | None = None) -> PromptLibrary:
        """The router's prompts read from `folder` over the shipped ones (None: the shipped prompts alone).

        One instance per folder. A library of other prompts (the evals' own) is built directly,
        `PromptLibrary(folder)`, with no shipped prompts under it.
        """
        return _library(folder or None)

    def names(self) -> list[str]:
        """Every prompt name in the folder and its base."""
        return sorted({*_names(self.folder), *(_names(self.base) if self.base is not None else ())})

    def load(self, name: str) -> str:
        """The text of prompt `name` (e.g. `"primary/system"`).

        Raises:
            FileNotFoundError: no such prompt; the message lists the valid names.
        """
        text = self._texts.get(name)
        if text is None:
            path = self.folder / f"{name}.md"
            if not path.is_file() and self.base is not None:
                path = self.base / f"{name}.md"
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


def _names(folder: Path) -> list[str]:
    """Prompt names under `folder` (hidden folders, such as an overlay's history, left out)."""
    if not folder.is_dir():
        return []
    names = (p.relative_to(folder) for p in folder.rglob("*.md"))
    return [str(n.with_suffix("")) for n in names if not any(part.startswith(".") for part in n.parts)]


@cache
def _library(folder: str | None) -> PromptLibrary:
    if not folder or Path(folder).resolve() == PROMPTS_DIR.resolve():
        return PromptLibrary(PROMPTS_DIR)
    return PromptLibrary(Path(folder), base=PROMPTS_DIR)


def load_prompt(name: str) -> str:
    """The text of shipped prompt `name` (see `PromptLibrary.load`)."""
    return PromptLibrary.at().load(name)


def render_prompt(name: str, **values: object) -> str:
    """Render shipped prompt `name` (see `PromptLibrary.render`)."""
    return PromptLibrary.at().render(name, **values)
