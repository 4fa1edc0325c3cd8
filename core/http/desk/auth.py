"""Who may use the review desk: the admin key (bearer or login cookie), and cross-site request checks.

The rule is the one `/stats` follows (`core.http.access`, with the same `core.http.keys.Keys`
check and key parser: `Authorization: Bearer` or `x-api-key`): with `ADMIN_API_KEY` set, only that
key opens the desk, and a client key gets 403; with only `ROUTER_API_KEYS` set, any client key
does (as for `/stats`); with no key at all the desk is open, like every endpoint, and the
router warns at start when it listens beyond loopback.

The login form trades the key for a cookie (HttpOnly, SameSite=Strict, path `/review`) that
holds an expiry and an HMAC made with a secret derived from the key(s), never the key itself:
changing the key logs everyone out. Forms and the page's own requests carry a CSRF token
(double submit: a random cookie that a cross-site page cannot read, echoed in a form field or
the `X-CSRF-Token` header), and a browser's `Origin`, when sent, must be this host.
Requests that present a key need no token: a browser never adds those headers by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from enum import Enum
from urllib.parse import urlsplit

from starlette.requests import Request

from core.http.keys import Keys, presented_key

SESSION_COOKIE = "ai_router_desk"
CSRF_COOKIE = "ai_router_desk_csrf"
COOKIE_PATH = "/review"


class Verdict(Enum):
    """What a credential is worth at the desk."""

    ALLOWED = "allowed"
    MISSING = "missing"
    """No credential: a page sends the login form, the API a 401."""
    FORBIDDEN = "forbidden"
    """A client key where the admin key is needed: 403, never a redirect."""
    INVALID = "invalid"


def judge(keys: Keys, token: str | None) -> Verdict:
    """Judge a presented key (or one typed into the login form) by the `/stats` rule."""
    if not keys.configured:
        return Verdict.ALLOWED
    if not token:
        return Verdict.MISSING
    if keys.admin_key:
        if keys.is_admin(token):
            return Verdict.ALLOWED
        return Verdict.FORBIDDEN if keys.is_client(token) else Verdict.INVALID
    return Verdict.ALLOWED if keys.is_client(token) else Verdict.INVALID


def _secret(keys: Keys) -> bytes:
    material = keys.admin_key or "\n".join(sorted(keys.client_keys))
    return hmac.new(material.encode(), b"ai-router review desk cookie", hashlib.sha256).digest()


def issue_cookie(keys: Keys, hours: float, now: float | None = None) -> str:
    """A login cookie value valid for `hours`: an expiry, a nonce and their HMAC (never the key)."""
    expiry = int((now or time.time()) + hours * 3600)
    body = f"{expiry}.{secrets.token_urlsafe(12)}"
    return f"{body}.{hmac.new(_secret(keys), body.encode(), hashlib.sha256).hexdigest()}"


def cookie_valid(keys: Keys, value: str | None, now: float | None = None) -> bool:
    """Whether a login cookie was issued with the current key(s) and has not expired."""
    if not value or not keys.configured:
        return False
    body, _, signature = value.rpartition(".")
    expected = hmac.new(_secret(keys), body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        return False
    try:
        return int(body.split(".", 1)[0]) > (now or time.time())
    except ValueError:
        return False


def judge_request(keys: Keys, request: Request) -> tuple[Verdict, bool]:
    """The verdict on a request, and whether it presented a key (then no CSRF token is needed)."""
    token = presented_key(request.scope)
    if token is not None:
        return judge(keys, token), True
    if not keys.configured or cookie_valid(keys, request.cookies.get(SESSION_COOKIE)):
        return Verdict.ALLOWED, False
    return Verdict.MISSING, False


def csrf_token(request: Request) -> tuple[str, bool]:
    """The CSRF token of this browser, and whether it is new (then the response must set the cookie)."""
    current = request.cookies.get(CSRF_COOKIE)
    if current and len(current) >= 20:
        return current, False
    return secrets.token_urlsafe(24), True


def csrf_ok(request: Request, sent: str | None) -> bool:
    """Whether an unsafe request carries this browser's token and, if it says, comes from this host."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            return False
    elif origin == "null":
        return False
    cookie = request.cookies.get(CSRF_COOKIE)
    return bool(cookie and sent and hmac.compare_digest(cookie, sent))
