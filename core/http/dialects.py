"""The Responses API and the Anthropic Messages API on the chat path.

Each endpoint reads and checks its API's request, translates it to a chat body
(`responses_api.to_chat`, `messages_api.to_chat`), and hands it to the same `run_chat` as
`/v1/chat/completions`, with a `Dialect` that renders the answer and the stream in the
client's API. So every request of every API runs the whole graph, with the same forced routes
by model alias, decision headers, one session record, usage, keys, limits and budgets; the
backends only ever see Chat Completions.

The Responses dialect also keeps the conversation (`core.sessions.conversations`) when the
request says `store` (the default), so a later `previous_response_id` continues it on any
route, backend or replica.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from langgraph.graph.state import CompiledStateGraph

from core.http import messages_api, responses_api
from core.http.chat import run_chat
from core.http.errors import OpenAIError
from core.http.keys import presented_key
from core.http.models import route_for_model
from core.http.schemas import ChatCompletionRequest, read_json, validate
from core.services import Services
from core.sessions.conversations import ConversationStore, owner_of
from core.sessions.recorder import RequestSession
from core.settings import Settings

SERVED_APIS = (
    "the OpenAI Chat Completions API (POST /v1/chat/completions), "
    "the OpenAI Responses API (POST /v1/responses, GET and DELETE /v1/responses/{id}), "
    "the Anthropic Messages API (POST /v1/messages, POST /v1/messages/count_tokens), "
    "legacy completions (POST /v1/completions), embeddings (POST /v1/embeddings), models (GET /v1/models), "
    "feedback (POST /v1/feedback); for operators: /health, /stats, /metrics, /api/route, /graph"
)
"""What an unknown endpoint's 404 lists."""


def _session_hex(session: RequestSession) -> str:
    """The hex part of the session id: a Responses or Messages id carries the same one."""
    return session.id.split("-", 1)[-1]


def _check_chat(chat: dict[str, Any], settings: Settings) -> None:
    """The checks `/v1/chat/completions` applies, on the translated body."""
    validate(ChatCompletionRequest, chat)
    limit = settings.max_messages
    if len(chat["messages"]) > limit:
        raise OpenAIError(400, f"Too many messages: {len(chat['messages'])} (limit {limit}, MAX_MESSAGES).",
                          param="messages")


def _frames(encode: Any, events: list[dict[str, Any]]) -> bytes:
    return b"".join(encode(event) for event in events)


# --- the Responses API ----------------------------------------------------------------------

class ResponsesDialect:
    """Renders chat answers and streams as the Responses API, and keeps what `store` asks for."""

    def __init__(self, base: dict[str, Any], translation: responses_api.ChatTranslation,
                 history: list[dict[str, Any]], store: ConversationStore | None, owner: str) -> None:
        """Answer as `base` (an envelope) describes; keep the conversation in `store` (None: keep nothing)."""
        self.base = base
        self.translation = translation
        self.history = history
        self.store = store
        self.owner = owner
        self.events = responses_api.ResponsesStream(base, translation.tools)

    async def _keep(self, response: dict[str, Any] | None) -> None:
        if self.store is None or response is None:
            return
        items = self.history + self.translation.input_items + list(response.get("output") or [])
        await self.store.put({"id": response["id"], "owner": self.owner, "response": response, "items": items})

    async def answer(self, response: dict[str, Any]) -> dict[str, Any]:
        """The Responses object of a finished chat completion (kept before it is returned)."""
        result = responses_api.response_object(response, self.base, self.translation.tools)
        await self._keep(result)
        return result

    def opening(self) -> bytes:
        """`response.created`, `response.in_progress`."""
        return _frames(responses_api.sse, self.events.start())

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        """The events of one chat chunk."""
        return _frames(responses_api.sse, self.events.feed(chunk))

    def failure(self, error: OpenAIError) -> bytes:
        """The open items closed, then `response.failed` carrying the error."""
        return _frames(responses_api.sse, self.events.end({"status": error.status_code, "message": error.message}))

    async def closing(self) -> bytes:
        """The open items closed, then `response.completed` (or `.incomplete`), kept before it is sent."""
        events = self.events.end()
        await self._keep(self.events.final)
        return _frames(responses_api.sse, events)


async def create_response(graph: CompiledStateGraph[Any, Any, Any, Any], services: Services, request: Request,
                          session: RequestSession) -> Response:
    """`POST /v1/responses`: one turn, continued from `previous_response_id` when given."""
    settings = services.settings
    body = await read_json(request, settings.max_request_bytes)
    session.body = body
    ask = validate(responses_api.ResponsesRequest, body)
    store = services.conversations
    owner = owner_of(presented_key(request.scope))
    history: list[dict[str, Any]] = []
    if ask.previous_response_id is not None:
        record = await store.get(ask.previous_response_id, owner) if store is not None else None
        if record is None:
            raise OpenAIError(404, f"Previous response with id {ask.previous_response_id!r} not found: unknown, "
                              "deleted, older than RESPONSES_STORE_MAX_AGE_S, stored with store=false, or "
                              "created with another key.", param="previous_response_id",
                              code="previous_response_not_found")
        history = record["items"]
    translation = responses_api.to_chat(ask, history)
    session.body = translation.chat  # the record keeps the conversation as the graph saw it
    _check_chat(translation.chat, settings)
    forced = route_for_model(settings, ask.model) or translation.forced_route
    base = responses_api.envelope(ask, f"resp_{_session_hex(session)}", int(time.time()),
                                  ask.model or settings.virtual_model)
    keep = store if ask.store is not False and store is not None and store.enabled else None
    dialect = ResponsesDialect(base, translation, history, keep, owner)
    return await run_chat(graph, services, request, session, translation.chat, stream=ask.stream,
                          forced_route=forced.upper() if forced else None, dialect=dialect)


def _not_found(response_id: str) -> OpenAIError:
    return OpenAIError(404, f"Response with id {response_id!r} not found.", param="response_id")


async def get_response(services: Services, request: Request, response_id: str) -> JSONResponse:
    """`GET /v1/responses/{id}`: a stored response, to the key that created it."""
    store = services.conversations
    record = await store.get(response_id, owner_of(presented_key(request.scope))) if store is not None else None
    if record is None:
        raise _not_found(response_id)
    return JSONResponse(record["response"])


async def delete_response(services: Services, request: Request, response_id: str) -> JSONResponse:
    """`DELETE /v1/responses/{id}`: forget a stored response (only its creator's key may)."""
    store = services.conversations
    if store is None or not await store.delete(response_id, owner_of(presented_key(request.scope))):
        raise _not_found(response_id)
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})


# --- the Anthropic Messages API ----------------------------------------------------------------

class MessagesDialect:
    """Renders chat answers and streams as the Anthropic Messages API."""

    def __init__(self, message_id: str, model: str, stop_sequences: list[str] | None) -> None:
        """Answer as the message `message_id`, naming `model` as the client asked."""
        self.message_id = message_id
        self.model = model
        self.stop_sequences = stop_sequences
        self.events = messages_api.MessagesStream(message_id, model, stop_sequences)

    async def answer(self, response: dict[str, Any]) -> dict[str, Any]:
        """The Message of a finished chat completion."""
        return messages_api.message_object(response, self.message_id, self.model, self.stop_sequences)

    def opening(self) -> bytes:
        """`message_start`, `ping`."""
        return _frames(messages_api.sse, self.events.start())

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        """The events of one chat chunk."""
        return _frames(messages_api.sse, self.events.feed(chunk))

    def failure(self, error: OpenAIError) -> bytes:
        """The open block closed, then an `error` event."""
        return _frames(messages_api.sse, self.events.end({"status": error.status_code, "message": error.message}))

    async def closing(self) -> bytes:
        """The open block closed, `message_delta` (stop reason, usage), `message_stop`."""
        return _frames(messages_api.sse, self.events.end())


async def create_message(graph: CompiledStateGraph[Any, Any, Any, Any], services: Services, request: Request,
                         session: RequestSession) -> Response:
    """`POST /v1/messages` (`?beta=true` too): one Anthropic Messages request."""
    settings = services.settings
    body = await read_json(request, settings.max_request_bytes)
    session.body = body
    ask = validate(messages_api.MessagesRequest, body)
    translation = messages_api.to_chat(ask)
    session.body = translation.chat
    _check_chat(translation.chat, settings)
    forced = route_for_model(settings, ask.model) or translation.forced_route
    dialect = MessagesDialect(f"msg_{_session_hex(session)}", ask.model or settings.virtual_model,
                              ask.stop_sequences)
    return await run_chat(graph, services, request, session, translation.chat, stream=ask.stream,
                          forced_route=forced.upper() if forced else None, dialect=dialect)


async def count_tokens(services: Services, request: Request) -> Response:
    """`POST /v1/messages/count_tokens`: an estimate (about 4 characters per token), not a tokenizer's count."""
    body = await read_json(request, services.settings.max_request_bytes)
    ask = validate(messages_api.CountTokensRequest, body)
    return Response(orjson.dumps({"input_tokens": messages_api.estimate_tokens(ask)}),
                    media_type="application/json", headers={"X-AI-Router-Estimate": "true"})
