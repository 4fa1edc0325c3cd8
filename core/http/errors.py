"""OpenAI-style errors: one exception type, one JSON shape, mapped once at the HTTP edge."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Send

from core.redact import redact

# OpenAI's `error.type` for each status the router answers with.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class OpenAIError(Exception):
    """An error the client should see, in OpenAI's shape, with the right HTTP status."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Describe the error; `message` is redacted before anyone sees it."""
        self.message = redact(message)
        super().__init__(self.message)
        self.status_code = status_code
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body: `{"error": {"message", "type", "param", "code"}}`."""
        return error_body(self.status_code, self.message, code=self.code, param=self.param)


def error_body(status_code: int, message: str, *, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error JSON for `status_code`."""
    return {
        "error": {
            "message": redact(message),
            "type": _TYPES.get(status_code, "server_error" if status_code >= 500 else "invalid_request_error"),
            "param": param,
            "code": code,
        }
    }


async def send_error(send: Send, status_code: int, message: str, *, code: str | None = None,
                     headers: dict[str, str] | None = None) -> None:
    """Answer with an OpenAI-style error straight from ASGI (the middlewares' refusals: 401, 403, 429)."""
    body = orjson.dumps(error_body(status_code, message, code=code))
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status_code == 401:
        raw_headers.append((b"www-authenticate", b"Bearer"))
    raw_headers += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status_code, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
