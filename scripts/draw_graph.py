"""Render the compiled routing graph as Mermaid into `docs/graph.mmd` and the README's picture.

Run `make graph` (or `python scripts/draw_graph.py`) after changing the wiring in
`graph/build.py`; `tests/test_studio.py` fails while the committed picture differs from the
graph. In README.md the picture sits between the `graph:begin` and `graph:end` markers.
Only the Mermaid source is written: LangChain's PNG rendering calls a web service, and
GitHub renders the ```mermaid block in the README by itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "graph.mmd"
README = ROOT / "README.md"
BEGIN, END = "<!-- graph:begin (make graph) -->", "<!-- graph:end -->"


def render() -> str:
    """The Mermaid source of the compiled graph, exactly as LangGraph draws it."""
    sys.path.insert(0, str(ROOT))  # run from anywhere: import this checkout's graph
    from graph.build import graph

    return graph.get_graph().draw_mermaid()


def with_picture(readme: str, mermaid: str) -> str:
    """README text with the block between the markers replaced by the ```mermaid picture.

    Raises:
        ValueError: the README lacks the markers.
    """
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md needs the lines {BEGIN!r} and {END!r} around the picture")
    block = f"{BEGIN}\n```mermaid\n{mermaid.rstrip()}\n```\n"
    return readme[:start] + block + readme[end:]


def main(argv: list[str] | None = None) -> int:
    """Write (or, with --check, compare) `docs/graph.mmd`; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/graph.mmd is out of date")
    args = parser.parse_args(argv)
    text = render()
    readme = README.read_text(encoding="utf-8")
    wanted = {TARGET: text, README: with_picture(readme, text)}
    if args.check:
        stale = [
            path
            for path, content in wanted.items()
            if not path.exists() or path.read_text(encoding="utf-8") != content
        ]
        for path in stale:
            print(
                f"{path.relative_to(ROOT)}: the graph picture is out of date; run `make graph`.",  # noqa: T201
                file=sys.stderr,
            )
        return 1 if stale else 0
    for path, content in wanted.items():
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
