"""Drive one graph run, keeping the state it builds up and the chunks it streams."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from graph.context import RouterContext

_ACCUMULATED = ("steps", "failed_backends")  # state keys with an `operator.add` reducer


class GraphRun:
    """One run of the routing graph, read as it goes.

    The run is consumed through `astream(["updates", "custom"])`: node updates build up
    `state` (so a session record has every step even when a later node fails) and
    custom events are the backend's stream chunks, handed on as they arrive.
    """

    def __init__(
        self,
        graph: CompiledStateGraph,
        graph_input: dict[str, Any],
        context: RouterContext,
        node_times: list[tuple[str, float, dict[str, Any]]] | None = None,
    ) -> None:
        """Start nothing yet; the run begins on the first read.

        `node_times` receives (node, epoch seconds, update) as each node finishes; the
        session's trace is built from it after the request.
        """
        self.state: dict[str, Any] = {"steps": [], "failed_backends": []}
        self.node_times = node_times if node_times is not None else []
        self._events: AsyncIterator[Any] = graph.astream(
            graph_input, context=context, stream_mode=["updates", "custom"]
        )
        self.finished = False

    def _merge(self, update: dict[str, Any]) -> None:
        now = time.time()
        for node, values in update.items():
            self.node_times.append((node, now, values if isinstance(values, dict) else {}))
            if not isinstance(values, dict):
                continue  # a node that changed nothing (meta_check with no rule firing)
            for key, value in values.items():
                if key in _ACCUMULATED:
                    self.state[key].extend(value or [])
                else:
                    self.state[key] = value

    async def next_chunk(self) -> dict[str, Any] | None:
        """Run until the next streamed chunk and return it; None once the run has ended."""
        if self.finished:
            return None
        async for mode, payload in self._events:
            if mode == "custom":
                return payload
            self._merge(payload)
        self.finished = True
        return None

    async def run_to_end(self) -> dict[str, Any]:
        """Run to the end (non-streaming) and return the state."""
        while await self.next_chunk() is not None:
            pass
        return self.state

    async def aclose(self) -> None:
        """Stop the run (client gone): cancels the node in progress and its backend call."""
        close = getattr(self._events, "aclose", None)
        if close is not None:
            await close()
