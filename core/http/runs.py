"""Drive one graph run, keeping the state it builds up and the chunks it streams."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from core.context import RouterContext
from core.state import accumulated_keys

_ACCUMULATED = accumulated_keys()
_END = object()


class GraphRun:
    """One run of the routing graph, read as it goes.

    The run is consumed through `astream(["updates", "custom"])`: node updates build up
    `state` (so a session record has every step even when a later node fails) and
    custom events are the backend's stream chunks, handed on as they arrive.

    Streaming runs are pumped by a plain asyncio task into a queue. The reader
    (an SSE response) lives inside Starlette's anyio cancel scope; cancelling LangGraph's
    `astream` from inside such a scope leaves the running node (and its backend call)
    going, while a plain `Task.cancel()` of the pump stops it at once.
    """

    def __init__(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        graph_input: dict[str, Any],
        context: RouterContext,
        node_times: list[tuple[str, float, dict[str, Any]]] | None = None,
    ) -> None:
        """Start nothing yet; the run begins on the first read.

        `node_times` receives (node, epoch seconds, update) as each node finishes; the
        session's trace is built from it after the request.
        """
        self.state: dict[str, Any] = {key: [] for key in _ACCUMULATED}
        self._context = context
        self.node_times = node_times if node_times is not None else []
        self._events: AsyncIterator[Any] = graph.astream(
            graph_input, context=context, stream_mode=["updates", "custom"]
        )
        self._queue: asyncio.Queue[Any] | None = None
        self._pump: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None
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

    async def run_to_end(self) -> dict[str, Any]:
        """Run to the end, ignoring streamed chunks (non-streaming), and return the state."""
        async for mode, payload in self._events:
            if mode == "updates":
                self._merge(payload)
        self.finished = True
        return self.state

    async def _pump_events(self) -> None:
        assert self._queue is not None
        try:
            async for mode, payload in self._events:
                if mode == "custom":
                    await self._queue.put(payload)
                else:
                    self._merge(payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a node: handed to the reader, raised there
            self._failure = exc
        finally:
            self._queue.put_nowait(_END)

    async def next_chunk(self) -> dict[str, Any] | None:
        """Wait for the next streamed chunk and return it; None once the run has ended.

        Raises:
            Exception: whatever a node raised (a bug), once the chunks before it are read.
        """
        if self.finished:
            return None
        if self._pump is None:
            self._queue = asyncio.Queue()  # unbounded: chunks come from `put_nowait` in the node
            self._context.attach(chunk_sink=self._queue.put_nowait)  # read by `generate` (see RouterContext)
            self._pump = asyncio.ensure_future(self._pump_events())
        assert self._queue is not None
        item = await self._queue.get()
        if item is _END:
            self.finished = True
            if self._failure is not None:
                raise self._failure
            return None
        if "served_model" not in self.state and isinstance(item, dict) and item.get("model"):
            # Only the generate node's last update names the model: a stream the client cuts
            # off never gets there, and its record would lose what the header said.
            self.state["served_model"] = str(item["model"])
        return item

    async def aclose(self) -> None:
        """Stop the run (client gone): cancels the node in progress and its backend call."""
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        elif self._pump is None:
            close = getattr(self._events, "aclose", None)
            if close is not None:
                await close()
