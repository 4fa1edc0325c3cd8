"""A streaming response that notices a client leaving, whatever the ASGI server says.

Starlette's `StreamingResponse` stops listening for `http.disconnect` when the server
declares ASGI spec 2.4 (uvicorn does), and relies on `send` failing instead; uvicorn's
`send` to a closed connection does not fail, so the stream, and the backend's generation
behind it, would run to the end for nobody. This response always listens, and cancels the
stream as soon as the client is gone (the generator's clean-up then closes the upstream).
"""

from __future__ import annotations

from functools import partial

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class DisconnectAwareStreamingResponse(StreamingResponse):
    """`StreamingResponse` that cancels its body iterator when the client disconnects."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the body while watching for the client's disconnect; stop at whichever comes first."""
        async with anyio.create_task_group() as group:

            async def run_then_cancel(work) -> None:
                await work()
                group.cancel_scope.cancel()

            group.start_soon(run_then_cancel, partial(self.stream_response, send))
            await run_then_cancel(partial(self.listen_for_disconnect, receive))
        if self.background is not None:
            await self.background()

