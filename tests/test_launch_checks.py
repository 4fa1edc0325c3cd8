"""`make run` / `make studio` refuse clearly instead of printing what is not true (issue #19)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT


@pytest.fixture()
def busy_port() -> Iterator[int]:
    """A loopback port something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _launch(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("PRIMARY_", "SIMULATOR", "STUDIO_"))}
    full.update(HOST="127.0.0.1", **env)
    return subprocess.run([sys.executable, "-m", "tools.launch", *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=60)


def test_run_on_a_busy_port_fails_before_saying_it_listens(busy_port):
    result = _launch(PORT=str(busy_port), SIMULATOR="off")
    assert result.returncode != 0
    assert f"127.0.0.1:{busy_port}" in result.stderr and "already in use" in result.stderr
    assert "listening" not in result.stdout


def test_an_unknown_simulator_choice_is_refused(busy_port):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    result = _launch(PORT=str(port), SIMULATOR="bogus")
    assert result.returncode != 0 and "SIMULATOR='bogus' is not one of auto, on, off" in result.stderr
    assert "listening" not in result.stdout


def test_studio_on_a_busy_port_says_so_instead_of_printing_a_wrong_url(busy_port):
    result = _launch("studio", STUDIO_PORT=str(busy_port), SIMULATOR="off")
    assert result.returncode == 1 and f"port {busy_port} is already in use" in result.stderr
    assert "LangGraph dev server on" not in result.stdout
