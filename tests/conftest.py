"""Shared fixtures: the backend simulator and the router, both real servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jsonschema
import openai
import pytest

from tests.operator_logs import digest
from tools.simulator import SimConfig, SimServer

ROOT = Path(__file__).resolve().parent.parent

# Nothing a test does may touch the operator's logs: every router, CLI and eval that the suite
# starts (or that inherits this environment) writes under a temporary folder instead of
# `logs/`, whatever the operator's environment says; a test that needs another folder says so.
SUITE_LOGS = Path(tempfile.mkdtemp(prefix="ai-router-test-logs-"))
os.environ.update({
    "SESSION_LOG_DIR": str(SUITE_LOGS / "sessions"),
    "TRACE_LOG_DIR": str(SUITE_LOGS / "traces"),
    "EVAL_LABELS_FILE": str(SUITE_LOGS / "labels.json"),
    "PROMPTS_DIR": str(SUITE_LOGS / "prompts"),  # the operator's prompt overlay: an edit there must not leak in
    "REVIEW_DESK_WORK_DIR": str(SUITE_LOGS / "desk"),  # the review desk's eval and review jobs
})
_OPERATOR_LOGS = pytest.StashKey[dict[str, str]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Take the digest of the operator's `logs/` before any test runs."""
    session.config.stash[_OPERATOR_LOGS] = digest(ROOT / "logs")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when any test changed a byte of the operator's `logs/`."""
    before = session.config.stash.get(_OPERATOR_LOGS, None)
    if before is None:
        return
    after = digest(ROOT / "logs")
    if after != before:
        changed = sorted(set(after.items()) ^ set(before.items()))
        session.config.get_terminal_writer().line(
            f"FAILED: the test suite changed the operator's logs/ ({len(changed)} files), e.g. {changed[:3]}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
TEST_XAI_KEY = "xai-TESTKEY-never-to-be-seen-0123456789"
CLASSIFIER_MODEL = "sim-classifier"
PRIMARY_MODEL = "sim-primary"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Router:
    """A router process started for a test."""

    url: str
    process: subprocess.Popen
    log_path: Path
    tmp: Path

    @property
    def session_dir(self) -> Path:
        """Where this router writes session records."""
        return self.tmp / "sessions"

    @property
    def trace_dir(self) -> Path:
        """Where this router writes local traces."""
        return self.tmp / "traces"

    @property
    def v1(self) -> str:
        """Base URL for OpenAI clients."""
        return f"{self.url}/v1"

    def client(self, **kwargs) -> openai.OpenAI:
        """The official OpenAI client pointed at this router."""
        return openai.OpenAI(base_url=self.v1, api_key=kwargs.pop("api_key", "unused"), max_retries=0, **kwargs)

    def log(self) -> str:
        """Everything the router printed so far."""
        return self.log_path.read_text(errors="replace")


def start_router(env: dict[str, str], tmp: Path, cwd: Path = ROOT) -> Router:
    """Start `python -m uvicorn server:app` with `env` and wait until it answers."""
    port = free_port()
    log_path = tmp / f"router-{port}.log"
    full_env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("PRIMARY_", "CLASSIFIER_", "XAI_", "LANGSMITH_", "LANGCHAIN_", "SESSION_",
                             "VISION_", "EMBEDDINGS_", "ROUTE_CACHE", "RESPONSE_CACHE",
                             "LOCAL_CLASSIFIER"))
    }
    full_env.update({
        "PYTHONUNBUFFERED": "1",
        "LANGSMITH_TRACING": "false",
        # Records and traces of every test router land in the test's temporary folder.
        "SESSION_LOG_DIR": str(tmp / "sessions"),
        "TRACE_LOG_DIR": str(tmp / "traces"),
    })
    full_env.update(env)
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "info"],
        cwd=cwd, env=full_env, stdout=log_file, stderr=subprocess.STDOUT,
    )
    router = Router(f"http://127.0.0.1:{port}", process, log_path, tmp)
    try:
        wait_until_serving(process, f"{router.url}/health", log_path, ready=lambda _: True)  # any answer
    except RuntimeError:
        process.kill()
        raise
    return router


def wait_until_serving(
    process: subprocess.Popen,
    url: str,
    log_path: Path,
    *,
    timeout: float = 60,
    ready: Callable[[httpx.Response], bool] = lambda response: response.status_code == 200,
) -> None:
    """Poll `url` until it answers as `ready` says, while `process` is still running.

    A bounded poll on a readiness condition (each failed try returns at once), not a
    synchronisation sleep. Raises RuntimeError with the process's log when the process
    exits or the deadline passes.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            if ready(httpx.get(url, timeout=2)):
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.05)


def stop_router(router: Router) -> None:
    """Stop a router started by `start_router`."""
    router.process.terminate()
    try:
        router.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        router.process.kill()


def sim_env(sim: SimServer, **extra: str) -> dict[str, str]:
    """Environment that points every backend at the simulator."""
    env = {
        "PRIMARY_BASE_URL": f"{sim.url}/v1",
        "PRIMARY_MODEL": PRIMARY_MODEL,
        "CLASSIFIER_BASE_URL": f"{sim.url}/v1",
        "CLASSIFIER_MODEL": CLASSIFIER_MODEL,
        "XAI_BASE_URL": f"{sim.url}/v1",
        "XAI_API_KEY": TEST_XAI_KEY,
        # Fast retries, and breakers that only the breaker tests open: test routers are shared.
        "RETRY_BACKOFF_S": "0.01",
        "RETRY_BACKOFF_MAX_S": "0.05",
        "BREAKER_FAILURES": "1000",
        # Tests count classifier calls per request; the decision cache has its own tests.
        "ROUTE_CACHE_SIZE": "0",
        # Tests count LLM classifier calls per request; the local classifier has its own tests
        # (tests/test_fast_classify.py) that turn it on.
        "LOCAL_CLASSIFIER": "off",
    }
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def sim() -> Iterator[SimServer]:
    """One simulator for the whole run; tests reset it before use."""
    with SimServer(SimConfig(classifier_model=CLASSIFIER_MODEL)) as server:
        yield server


@pytest.fixture()
def sim_reset(sim: SimServer) -> SimServer:
    """The simulator with calls, faults and config reset."""
    httpx.post(f"{sim.url}/sim/reset").raise_for_status()
    return sim


@pytest.fixture(scope="session")
def router(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """The router on the simulator, with an xAI key: every route available."""
    tmp = tmp_path_factory.mktemp("router")
    server = start_router(sim_env(sim), tmp)
    yield server
    stop_router(server)


@pytest.fixture(scope="session")
def router_without_xai(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """A router with no xAI key: COMPLEX and ENRICH degrade to the primary model, images have no reader."""
    tmp = tmp_path_factory.mktemp("no-xai")
    server = start_router(sim_env(sim, XAI_API_KEY=""), tmp)
    yield server
    stop_router(server)


def sim_fault(sim: SimServer, **fault: object) -> None:
    """Queue a simulator fault (`fault`, `model`, `path`, `count`, `retry_after`, `delay_ms`)."""
    httpx.post(f"{sim.url}/sim/faults", json=fault).raise_for_status()


def sim_calls(sim: SimServer) -> list[dict]:
    """The requests the simulator received since its last reset."""
    return httpx.get(f"{sim.url}/sim/calls").json()


SESSION_SCHEMA = json.loads((ROOT / "core" / "sessions" / "session.schema.json").read_text())


def wait_for_record(router: Router, session_id: str, timeout: float = 10.0) -> dict:
    """The session record of `session_id`, once the writer thread has put it on disk.

    Records are written off the request path, so a test waits for the file to appear
    (bounded poll on that condition), then validates it against the shipped JSON Schema.
    """
    deadline = time.monotonic() + timeout
    while True:
        matches = list(router.session_dir.glob(f"*_{session_id}.json"))
        if matches:
            record = json.loads(matches[0].read_text())
            jsonschema.validate(record, SESSION_SCHEMA)
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"no session record for {session_id} in {router.session_dir}")
        time.sleep(0.02)
