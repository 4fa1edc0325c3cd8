"""Keys at the HTTP edge: the one parser of a presented key, and the one check of whose key it is.

A client presents its key as `Authorization: Bearer <key>` (OpenAI's SDKs, most clients) or as
`x-api-key: <key>` (Anthropic's SDKs and Claude Code); both mean the same. Every check compares
in constant time against every configured key, so timing says nothing about which key is close.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from starlette.types import Scope

from core.settings import Settings
from core.usage.ledger import ANONYMOUS, key_id


def presented_key(scope: Scope) -> str | None:
    """The key a request presents (`Authorization: Bearer …`, else `x-api-key`), if any."""
    bearer = api_key = None
    for name, value in scope.get("headers") or ():
        if name == b"authorization" and bearer is None:
            text = value.decode("latin-1").strip()
            bearer = text[7:].strip() if text.lower().startswith("bearer ") else ""
        elif name == b"x-api-key" and api_key is None:
            api_key = value.decode("latin-1").strip()
    return bearer or api_key or None


def _matches(given: str, keys: list[str]) -> bool:
    """Constant-time comparison against every key in `keys`."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


def fingerprint(token: str) -> str:
    """A short stable id for a key, so the key itself is never kept as a dict key or logged."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class Keys:
    """The keys this router knows (ROUTER_API_KEYS, ADMIN_API_KEY) and whose a presented key is."""

    def __init__(self, settings: Settings) -> None:
        """Read the configured keys from `settings`."""
        self.client_keys = list(settings.client_keys)
        self.admin_key = settings.admin_api_key.get_secret_value() if settings.admin_api_key else None

    @property
    def configured(self) -> bool:
        """Whether any key is configured (else the router is open, on loopback by default)."""
        return bool(self.client_keys or self.admin_key)

    def is_admin(self, token: str | None) -> bool:
        """Whether `token` is the admin key."""
        return bool(token and self.admin_key and _matches(token, [self.admin_key]))

    def is_client(self, token: str | None) -> bool:
        """Whether `token` is one of the client keys."""
        return bool(token and self.client_keys and _matches(token, self.client_keys))

    def client_name(self, token: str | None) -> str:
        """Who a request comes from, as usage counts it: `admin`, a client key's `key-…` id, or anonymous."""
        if self.is_admin(token):
            return "admin"
        if token and self.is_client(token):
            return key_id(token)
        return ANONYMOUS


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
