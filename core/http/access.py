"""Who may call the router, and how often: client keys, the admin key, rate limits.

A pure ASGI middleware, so it also guards the LangServe routes and costs next to nothing
when no key and no limit is configured (the workstation default).

Rate limits count clients, not tokens: a bearer token names the client only when it is a
configured key (a made-up token each time must not buy a fresh bucket); otherwise the client
is its address, the TCP peer, or with TRUSTED_PROXIES the address a trusted proxy forwarded.
With REDIS_URL the windows are the fleet's (`core.shared.ratelimit`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from core.http.errors import error_body
from core.settings import Settings
from core.shared.ratelimit import RateLimiter
from core.usage import client_name

# Operator endpoints: they reveal routing internals or run arbitrary routes.
ADMIN_PREFIXES = ("/api/", "/stats", "/graph", "/metrics")
OPEN_PATHS = ("/health",)  # health checks (compose, load balancers) need no key
# The review desk checks the admin key itself (bearer or its login cookie, by the rule below),
# so its login page stays reachable when client keys are configured.
SELF_GUARDED = "/review"
_MAX_BUCKETS = 10_000  # distinct clients remembered by the rate limiter
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _matches(given: str, keys: list[str]) -> bool:
    """Constant-time comparison against every configured key."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


class AccessMiddleware:
    """Check keys and rate limits before a request reaches any route."""

    def __init__(self, app: ASGIApp, settings: Settings | None = None) -> None:
        """Keep `app`; keys and limits are read from `settings` (default: the app's, built in its lifespan)."""
        self.app = app
        self._settings = settings
        self.enabled: bool | None = None

    def _configure(self, scope: Scope) -> None:
        settings: Settings = self._settings or scope["app"].state.settings
        self.client_keys = settings.client_keys
        self.admin_key = settings.admin_api_key.get_secret_value() if settings.admin_api_key else None
        self.rate = settings.rate_limit_per_minute
        self.trusted = trusted_networks(settings.trusted_proxies)
        self.limiter: RateLimiter | None = None
        if self.rate > 0:
            shared = getattr(getattr(scope["app"].state, "services", None), "shared", None)
            self.limiter = RateLimiter(self.rate, max(1, settings.rate_limit_burst),
                                       shared.link if shared is not None else None, _MAX_BUCKETS)
            if shared is not None:
                shared.rate_limiter = self.limiter
        self.enabled = bool(self.client_keys or self.admin_key or self.rate > 0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse with 401/403/429 in OpenAI's error shape, or pass the request on."""
        if scope["type"] != "http":  # the lifespan runs through here before the settings exist
            await self.app(scope, receive, send)
            return
        if self.enabled is None:
            self._configure(scope)
        path: str = scope["path"]
        if not self.enabled or path in OPEN_PATHS or path == SELF_GUARDED or path.startswith(SELF_GUARDED + "/"):
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        admin_path = path.startswith(ADMIN_PREFIXES)
        if admin_path and self.admin_key:
            if token is None:
                return await _refuse(send, 401, "This endpoint needs the admin key (Authorization: Bearer …).")
            if not _matches(token, [self.admin_key]):
                status = 403 if self.client_keys and _matches(token, self.client_keys) else 401
                message = ("A client key cannot use operator endpoints; use ADMIN_API_KEY." if status == 403
                           else "Invalid admin key.")
                return await _refuse(send, status, message)
        elif self.client_keys:
            allowed = self.client_keys + ([self.admin_key] if self.admin_key else [])
            if token is None:
                return await _refuse(send, 401, "Missing API key: send Authorization: Bearer <key>.")
            if not _matches(token, allowed):
                return await _refuse(send, 401, "Invalid API key.")
        if self.limiter is not None and not (self.admin_key and token and _matches(token, [self.admin_key])):
            # The operator's key is never limited: a monitoring scrape must not be refused.
            admitted, retry_after = await self.limiter.hit(self._identity(scope, token))
            if not admitted:
                _count_rate_limited(scope, token)
                return await _refuse(send, 429, f"Rate limit of {self.rate:g} requests per minute exceeded.",
                                     {"retry-after": str(max(1, round(retry_after)))})
        await self.app(scope, receive, send)

    def _identity(self, scope: Scope, token: str | None) -> str:
        """Who is counted: a configured key, else the client's address."""
        keys = self.client_keys + ([self.admin_key] if self.admin_key else [])
        if token and keys and _matches(token, keys):
            return f"key:{_fingerprint(token)}"
        return f"addr:{client_address(scope, self.trusted)}"


def trusted_networks(text: str) -> list[IPNetwork]:
    """TRUSTED_PROXIES as networks (a bare address is a /32 or /128)."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()]


def _trusted(address: str, networks: list[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(scope: Scope, trusted: list[IPNetwork]) -> str:
    """The client's address: the TCP peer, or what a trusted proxy forwarded.

    Behind trusted proxies, the client is the right-most `X-Forwarded-For` entry that is not
    a trusted proxy itself (entries further left can be forged by the client).
    """
    peer = str((scope.get("client") or ("?",))[0])
    if not trusted or not _trusted(peer, trusted):
        return peer
    forwarded = [value.decode("latin-1") for name, value in scope.get("headers") or () if name == b"x-forwarded-for"]
    hops = [hop.strip() for line in forwarded for hop in line.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _count_rate_limited(scope: Scope, token: str | None) -> None:
    """Count a refusal against the client in the usage figures (`/stats` → usage.clients)."""
    state = getattr(scope.get("app"), "state", None)
    usage = getattr(state, "usage", None)
    settings: Settings | None = getattr(state, "settings", None)
    if usage is not None and settings is not None:
        admin = settings.admin_api_key.get_secret_value() if settings.admin_api_key else None
        usage.rate_limited(client_name(token, settings.client_keys, admin))


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            text = value.decode("latin-1").strip()
            if text.lower().startswith("bearer "):
                return text[7:].strip() or None
            return None
    return None


def _fingerprint(token: str) -> str:
    """A short stable id for a key, so the key itself is never kept as a dict key or logged."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


async def _refuse(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = orjson.dumps(error_body(status, message, code={401: "invalid_api_key", 403: "forbidden",
                                                          429: "rate_limit_exceeded"}.get(status)))
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        raw_headers.append((b"www-authenticate", b"Bearer"))
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
