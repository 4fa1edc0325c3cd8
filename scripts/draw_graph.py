"""Render the compiled routing graph as Mermaid into `docs/graph.mmd` (the README's picture).

Run `make graph` (or `python scripts/draw_graph.py`) after changing the wiring in
`graph/build.py`; `tests/test_studio.py` fails while the committed file differs from the
graph. Only the Mermaid source is written: LangChain's PNG rendering calls a web service,
and GitHub renders the ```mermaid block in the README by itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "graph.mmd"


def render() -> str:
    """The Mermaid source of the compiled graph, exactly as LangGraph draws it."""
    sys.path.insert(0, str(ROOT))  # run from anywhere: import this checkout's graph
    from graph.build import graph

    return graph.get_graph().draw_mermaid()


def main(argv: list[str] | None = None) -> int:
    """Write (or, with --check, compare) `docs/graph.mmd`; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/graph.mmd is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run `make graph`.", file=sys.stderr)  # noqa: T201
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
