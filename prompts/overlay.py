"""The operator's prompt folder: edited prompts over the shipped ones, with a history and a revert.

`PROMPTS_DIR` (default `logs/prompts`) names the folder. It holds only the prompts that were
edited (as `<name>.md`, read before the shipped ones, see `PromptLibrary`) and `.history.jsonl`,
one line per change: which prompt, its text before and after (None: not in the overlay, i.e.
the shipped text), why, and when. A revert is a change too (it restores the text before the
change it undoes), so the history only grows. The shipped `prompts/` folder is never written:
an overlay that points at it is refused.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prompts import PROMPTS_DIR

HISTORY = ".history.jsonl"


class ShippedPromptsError(ValueError):
    """An attempt to write the shipped prompts folder."""


class PromptOverlay:
    """The edits in one operator folder over the shipped prompts."""

    def __init__(self, folder: Path, shipped: Path = PROMPTS_DIR) -> None:
        """Use `folder` as the overlay over `shipped`.

        Raises:
            ShippedPromptsError: `folder` is the shipped folder or inside it.
        """
        resolved, base = folder.resolve(), shipped.resolve()
        if resolved == base or base in resolved.parents:
            raise ShippedPromptsError(
                f"{folder} is the shipped prompts folder: edits go to an operator folder (PROMPTS_DIR), "
                "never to the checkout's prompts/"
            )
        self.folder = folder
        self.shipped = shipped

    def _path(self, name: str, folder: Path) -> Path:
        path = (folder / f"{name}.md").resolve()
        if folder.resolve() not in path.parents:
            raise ValueError(f"{name!r} is not a prompt name")
        return path

    def shipped_text(self, name: str) -> str | None:
        """The shipped text of prompt `name`, or None when no such prompt ships."""
        path = self._path(name, self.shipped)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def overlay_text(self, name: str) -> str | None:
        """The operator's text of prompt `name`, or None when it is not edited."""
        path = self._path(name, self.folder)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def text(self, name: str) -> str | None:
        """The text a router using this overlay reads for `name`."""
        edited = self.overlay_text(name)
        return edited if edited is not None else self.shipped_text(name)

    def edited(self) -> list[str]:
        """Names of the prompts the overlay holds."""
        if not self.folder.is_dir():
            return []
        names = (p.relative_to(self.folder).with_suffix("") for p in self.folder.rglob("*.md"))
        return sorted(str(n) for n in names if not any(part.startswith(".") for part in n.parts))

    def history(self) -> list[dict[str, Any]]:
        """Every change, newest first."""
        path = self.folder / HISTORY
        if not path.is_file():
            return []
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line: the change it described did not complete
            if isinstance(entry, dict):
                entries.append(entry)
        return entries[::-1]

    def _set(self, name: str, text: str | None) -> None:
        path = self._path(name, self.folder)
        if text is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)

    def _log(self, entry: dict[str, Any]) -> dict[str, Any]:
        self.folder.mkdir(parents=True, exist_ok=True)
        entry = {"id": len(self.history()) + 1, "at": datetime.now(UTC).isoformat(timespec="seconds"), **entry}
        with (self.folder / HISTORY).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return entry

    def write(self, name: str, text: str, note: str = "") -> dict[str, Any]:
        """Make `text` the operator's prompt `name`; return the history entry.

        Raises:
            ValueError: `name` is not a shipped prompt.
        """
        if self.shipped_text(name) is None:
            raise ValueError(f"no shipped prompt {name!r} to edit")
        before = self.overlay_text(name)
        self._set(name, text)
        return self._log({"action": "apply", "name": name, "before": before, "after": text, "note": note})

    def revert(self, change_id: int | None = None) -> dict[str, Any]:
        """Undo one change (default: the newest one not undone yet); return the new history entry.

        Raises:
            LookupError: nothing to revert, or no such change.
        """
        history = self.history()
        undone = {e.get("reverts") for e in history if e.get("action") == "revert"}
        candidates = [e for e in history if e.get("action") == "apply" and e["id"] not in undone]
        if change_id is not None:
            candidates = [e for e in candidates if e["id"] == change_id]
        if not candidates:
            raise LookupError("nothing to revert" if change_id is None else f"no change {change_id} to revert")
        change = candidates[0]
        before = self.overlay_text(change["name"])
        self._set(change["name"], change["before"])
        return self._log({"action": "revert", "name": change["name"], "before": before, "after": change["before"],
                          "reverts": change["id"], "note": f"revert of change {change['id']}"})

    def materialise(self, target: Path) -> Path:
        """Write the prompts a router using this overlay reads (shipped, then edited) into `target`."""
        for name in sorted({*_shipped_names(self.shipped), *self.edited()}):
            text = self.text(name)
            if text is None:
                continue
            path = target / f"{name}.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return target


def _shipped_names(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.md"))
