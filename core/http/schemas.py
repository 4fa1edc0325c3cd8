"""The request bodies the router accepts, validated at the edge with clear errors."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from core.http.errors import OpenAIError

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


# Content parts some backend of the router can take. Audio, files and other parts are
# refused up front: no configured backend accepts them, and vLLM would fail obscurely.
SUPPORTED_PARTS = frozenset({"text", "input_text", "image_url"})


class ChatMessage(BaseModel):
    """One chat message; unknown fields (name, tool_call_id, …) pass through."""

    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[dict[str, Any]] | None = None

    @field_validator("content")
    @classmethod
    def _known_parts(cls, content: Any) -> Any:
        if isinstance(content, list):
            for part in content:
                kind = part.get("type")
                if kind not in SUPPORTED_PARTS:
                    raise ValueError(
                        f"content part type {kind!r} is not supported by the router's backends "
                        f"(supported: {sorted(SUPPORTED_PARTS)})"
                    )
                if kind in ("text", "input_text") and not isinstance(part.get("text"), str):
                    raise ValueError("a text content part needs a string 'text'")
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else image
                if kind == "image_url" and not isinstance(url, str):
                    raise ValueError("an image_url content part needs image_url.url")
        return content


class ChatCompletionRequest(BaseModel):
    """`POST /v1/chat/completions`. Fields the router does not know pass through to the backend."""

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, description="Any value; the router shows one virtual model.")
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: StrictBool = False  # "yes" or 1 is not a boolean: 400, as OpenAI answers
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)


class RouteRequest(ChatCompletionRequest):
    """`POST /api/route`: a chat request plus a forced route and/or a dry run."""

    route: str | None = Field(None, description="Force this route label (skips classification).")
    dry_run: StrictBool = Field(False, description="Return the routing decision without generating.")


class FeedbackRequest(BaseModel):
    """`POST /v1/feedback`: a person's rating of one answer."""

    model_config = ConfigDict(extra="forbid")

    response_id: str = Field(
        ..., pattern=r"^(chatcmpl-|resp_|msg_)[0-9a-f]{8,32}$",
        description="The answer's `id` (`chatcmpl-…`, or the Responses `resp_…` / Messages `msg_…` id of the same "
        "session), or a prefix of it that only one session of this router starts with.",
    )

    @field_validator("response_id")
    @classmethod
    def _session_id(cls, value: str) -> str:
        """The session id: a Responses or Messages id carries the same hex as its session's `chatcmpl-` id."""
        for prefix in ("resp_", "msg_"):
            if value.startswith(prefix):
                return "chatcmpl-" + value.removeprefix(prefix)
        return value

    score: float = Field(..., ge=-1, le=10, description="-1/1 for thumbs, or a 0-10 rating.")
    comment: str | None = Field(None, max_length=4000)
    expected_route: str | None = Field(None, description="The route the person thinks was right.")


class EmbeddingsRequest(BaseModel):
    """`POST /v1/embeddings`. Other fields (`encoding_format`, `dimensions`, …) pass through."""

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, description="Any value; the configured EMBEDDINGS_MODEL answers.")
    input: str | list[str] | list[int] | list[list[int]] = Field(..., min_length=1)


class CompletionRequest(BaseModel):
    """`POST /v1/completions` (legacy text completions)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    prompt: str | list[str] | list[int] | list[list[int]]
    stream: StrictBool = False


def _json_like(content_type: str) -> bool:
    """Whether a body of this type is read as JSON.

    JSON (`application/json`, `application/*+json`), no type at all, and curl's `-d` default
    (`application/x-www-form-urlencoded`, which carries JSON when a person forgets the header)
    are; text, XML, forms and media are not.
    """
    return content_type in ("", "*/*", "application/json", "application/x-www-form-urlencoded") or (
        content_type.startswith("application/") and content_type.endswith("+json"))


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """Read the request body as a JSON object, refusing bodies over `limit` bytes.

    Raises:
        OpenAIError: 413 too large, 415 not JSON-ish content type, 400 malformed JSON.
    """
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if not _json_like(content_type):
        raise OpenAIError(415, f"Unsupported content type {content_type!r}: send application/json.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise OpenAIError(
            413, f"Request body of {declared} bytes exceeds the limit of {limit} bytes (MAX_REQUEST_BYTES)."
        )
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise OpenAIError(413, f"Request body exceeds the limit of {limit} bytes (MAX_REQUEST_BYTES).")
    if not body:
        raise OpenAIError(400, "Request body is empty: send a JSON object.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OpenAIError(400, f"Request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise OpenAIError(400, "Request body must be a JSON object.")
    return data


Model = TypeVar("Model", bound=BaseModel)


def validate(model: type[Model], data: dict[str, Any]) -> Model:
    """Validate `data` as `model`, turning the first problem into an OpenAI-style 400."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise OpenAIError(400, f"Invalid request: {where}: {first['msg']}", param=where) from None
