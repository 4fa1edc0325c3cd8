"""Ask a running router how it and its backends are doing (`make health`, `make status`, Docker).

Three ways to print the same `/health` answer:

* ``--verbose`` (``make health``): one line per backend with URL, model, latency and error;
* ``--oneline`` (``make status``): a single line for scripts and prompts;
* ``--quiet`` (with ``--local``, the image's ``HEALTHCHECK``): nothing, only the exit status.

The exit status is 0 when the router answers 200 (its primary model is reachable), 1 when it
answers otherwise, and 2 when it cannot be reached at all. Only the standard library is used,
so it works in the slim image and before the virtual environment has every extra.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

UNREACHABLE = 2


def local_url() -> str:
    """The router on this machine (or in this container), on `PORT` (default 8000)."""
    return f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"


def default_url() -> str:
    """The router to ask: `ROUTER_URL`, else this machine on `PORT`."""
    return os.environ.get("ROUTER_URL") or local_url()


def fetch_health(url: str, timeout: float) -> tuple[int, dict[str, Any]]:
    """GET `<url>/health`; return the HTTP status and the decoded body.

    Raises:
        OSError: the router could not be reached (connection refused, timeout, DNS).
    """
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:  # 503 still carries the per-backend report
        body = error.read()
        try:
            return error.code, json.loads(body or b"{}")
        except ValueError:
            return error.code, {"status": f"HTTP {error.code}"}


def one_line(url: str, status: int, body: dict[str, Any]) -> str:
    """`ai-router <url>: ok (primary ok, classifier ok, xai down)`."""
    parts = ", ".join(
        f"{name} {'ok' if info.get('ok') else 'down'}" for name, info in (body.get("backends") or {}).items()
    )
    return f"ai-router {url}: {body.get('status', f'HTTP {status}')}" + (f" ({parts})" if parts else "")


def verbose(url: str, status: int, body: dict[str, Any]) -> str:
    """A header line plus one line per backend with its URL, model, latency and error."""
    lines = [f"ai-router {url}/health -> HTTP {status}, status {body.get('status', '?')}"]
    for name, info in (body.get("backends") or {}).items():
        state = "ok  " if info.get("ok") else "DOWN"
        error = f"  error: {info['error']}" if info.get("error") else ""
        lines.append(
            f"  {state} {name:<10} {info.get('url', '?')}  model={info.get('model', '?')}"
            f"  {info.get('latency_ms', '?')} ms{error}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the router's health as asked and return the exit status described above."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="router base URL (default: $ROUTER_URL)")
    # A container's health check must ask its own process, whatever ROUTER_URL .env sets.
    parser.add_argument("--local", action="store_true", help="ask 127.0.0.1:$PORT, ignoring $ROUTER_URL")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--verbose", action="store_true", help="one line per backend")
    mode.add_argument("--oneline", action="store_true", help="a single line")
    mode.add_argument("--quiet", action="store_true", help="no output, exit status only")
    args = parser.parse_args(argv)
    args.url = args.url or (local_url() if args.local else default_url())
    try:
        status, body = fetch_health(args.url, args.timeout)
    except OSError as error:
        if not args.quiet:
            print(f"ai-router {args.url}: unreachable ({error})", file=sys.stderr)  # noqa: T201
        return UNREACHABLE
    if args.verbose:
        print(verbose(args.url, status, body))  # noqa: T201
    elif not args.quiet:
        print(one_line(args.url, status, body))  # noqa: T201
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
