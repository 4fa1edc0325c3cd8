"""Who may call the router, how often and how much: client keys, the admin key, rate limits, budgets.

Pure ASGI middlewares, so they also guard the LangServe routes and cost next to nothing when
no key, limit or budget is configured (the workstation default). They read the process's
`Services` (the keys' settings, the rate limiter, the budgets, the usage ledger) through
`core.http.home.services_of`, once the lifespan has built them.

Rate limits count clients, not tokens: a presented key names the client only when it is a
configured key (a made-up token each time must not buy a fresh bucket); otherwise the client
is its address, the TCP peer, or with TRUSTED_PROXIES the address a trusted proxy forwarded.
With REDIS_URL the windows are the fleet's (`core.shared.ratelimit`).

Per-key budgets (`core.usage.budgets`) refuse a request past a client's daily allowance with
429 `budget_exceeded`; `BudgetMiddleware` runs inside `AccessMiddleware` (keys are checked by
then) and names the client of every request in its state, where the chat path reads it.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from core.http.errors import send_error
from core.http.home import services_of
from core.http.keys import Keys, fingerprint, presented_key
from core.services import Services

# Operator endpoints: they reveal routing internals or run arbitrary routes.
ADMIN_PREFIXES = ("/api/", "/stats", "/graph", "/metrics")
OPEN_PATHS = ("/health",)  # health checks (compose, load balancers) need no key
BUDGET_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AccessMiddleware:
    """Check keys and rate limits before a request reaches any route."""

    def __init__(self, app: ASGIApp) -> None:
        """Keep `app`; keys and limits are read from the app's services on the first request."""
        self.app = app
        self.enabled: bool | None = None

    def _configure(self, services: Services) -> None:
        settings = services.settings
        self.keys = Keys(settings)
        self.rate = settings.rate_limit_per_minute
        self.trusted = trusted_networks(settings.trusted_proxies)
        self.limiter = services.rate_limiter
        self.usage = services.usage
        self.enabled = bool(self.keys.configured or self.limiter is not None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse with 401/403/429 in OpenAI's error shape, or pass the request on."""
        if scope["type"] != "http":  # the lifespan runs through here before the services exist
            await self.app(scope, receive, send)
            return
        if self.enabled is None:
            self._configure(services_of(scope["app"]))
        if not self.enabled or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        token = presented_key(scope)
        keys = self.keys
        admin = keys.is_admin(token)
        if path.startswith(ADMIN_PREFIXES) and keys.admin_key:
            if token is None:
                return await send_error(send, 401, "This endpoint needs the admin key (Authorization: Bearer …).",
                                        code="invalid_api_key")
            if not admin:
                if keys.is_client(token):
                    return await send_error(send, 403, "A client key cannot use operator endpoints; use ADMIN_API_KEY.",
                                            code="forbidden")
                return await send_error(send, 401, "Invalid admin key.", code="invalid_api_key")
        elif keys.client_keys:
            if token is None:
                return await send_error(send, 401, "Missing API key: send Authorization: Bearer <key>.",
                                        code="invalid_api_key")
            if not (admin or keys.is_client(token)):
                return await send_error(send, 401, "Invalid API key.", code="invalid_api_key")
        if self.limiter is not None and not admin:
            # The operator's key is never limited: a monitoring scrape must not be refused.
            known = admin or keys.is_client(token)
            identity = f"key:{fingerprint(token)}" if token and known else f"addr:{client_address(scope, self.trusted)}"
            admitted, retry_after = await self.limiter.hit(identity)
            if not admitted:
                if self.usage is not None:  # counted against the client in /stats → usage.clients
                    self.usage.rate_limited(keys.client_name(token))
                return await send_error(send, 429, f"Rate limit of {self.rate:g} requests per minute exceeded.",
                                        code="rate_limit_exceeded",
                                        headers={"retry-after": str(max(1, round(retry_after)))})
        await self.app(scope, receive, send)


class BudgetMiddleware:
    """Name the client of every request; refuse requests past a per-key daily budget (429)."""

    def __init__(self, app: ASGIApp) -> None:
        """Keep `app`; keys and budgets are read from the app's services on the first request."""
        self.app = app
        self.keys: Keys | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Put `client` in the request's state; refuse with 429 `budget_exceeded` past a budget."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        services = services_of(scope["app"])
        if self.keys is None:
            self.keys = Keys(services.settings)
        client = self.keys.client_name(presented_key(scope))
        scope.setdefault("state", {})["client"] = client
        budgets = services.budgets
        if budgets is not None and budgets.enabled and scope["path"] in BUDGET_PATHS:
            refusal = await budgets.admit(client)
            if refusal is not None:
                if services.usage is not None:
                    services.usage.budget_refused(client, "tokens" if "token" in refusal else "requests")
                return await send_error(send, 429, refusal, code="budget_exceeded",
                                        headers={"retry-after": str(budgets.seconds_to_renewal())})
        await self.app(scope, receive, send)


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
