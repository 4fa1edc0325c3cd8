"""The Makefile: every target listed by `make help`, dry runs of all, real runs of the local ones.

Real runs use this interpreter (`SETUP= PY=<python>`) so the test does not build a venv.
Targets that need Docker are run against a Compose command that does not exist, so they
must fail with a clear message and never touch a real Docker daemon.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port, wait_until_serving

MAKEFILE = ROOT / "Makefile"
# The targets users of the original knew (issue 8), plus the other engineers' tools.
REQUIRED = {
    "help",
    "venv",
    "run",
    "up",
    "down",
    "health",
    "status",
    "logs",
    "logs-router",
    "logs-primary",
    "logs-classifier",
    "test",
    "benchmark",
    "eval",
    "review",
    "sessions",
    "studio",
    "gpu",
    "clean-all",
    "train-router",
}
DOCKER_TARGETS = ["up", "down", "logs", "logs-router", "logs-primary", "logs-classifier"]
# Work of other engineers: (target, the file that provides it, the command it must run).
OPTIONAL = [
    ("eval", "evals/run.py", "-m evals.run"),
    ("review", "evals/review.py", "-m evals.review"),
    ("sessions", "tools/sessions.py", "-m tools.sessions list"),
    ("benchmark", "scripts/benchmark.py", "scripts/benchmark.py"),
    ("train-router", "evals/train.py", "-m evals.train"),
]
LOCAL = ["SETUP=", f"PY={sys.executable}", f"PYTHON={sys.executable}"]


def make(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run make in the repository with this interpreter standing in for the venv."""
    return subprocess.run(
        ["make", "--no-print-directory", *args, *LOCAL],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def phony_targets() -> set[str]:
    """Targets declared .PHONY (line continuations joined)."""
    text = MAKEFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    return set(re.search(r"^\.PHONY:(.*)$", text, re.M).group(1).split())


def test_help_lists_every_target_with_a_description():
    result = make("help")
    assert result.returncode == 0, result.stderr
    listed = dict(re.findall(r"^  (\S+)\s+(.+)$", result.stdout, re.M))
    assert REQUIRED <= phony_targets()
    assert phony_targets() == set(listed), phony_targets() ^ set(listed)
    assert all(len(description) > 10 for description in listed.values())


def test_help_is_the_default_goal():
    assert make().stdout == make("help").stdout


@pytest.mark.parametrize("target", sorted(REQUIRED))
def test_every_target_dry_runs(target: str):
    result = make("-n", target)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), f"make -n {target} printed nothing"


def test_up_uses_the_profiles_asked_for():
    assert (
        "COMPOSE_PROFILES=sim,ui docker compose up -d --build" in make("-n", "up", "PROFILES=sim,ui").stdout
    )


@pytest.mark.parametrize("target", DOCKER_TARGETS)
def test_docker_targets_fail_clearly_without_compose(target: str):
    result = make(target, "COMPOSE=/nonexistent/docker compose")
    assert result.returncode != 0
    assert f"make {target}: needs Docker with the Compose plugin" in result.stderr
    assert "make run" in result.stderr


@pytest.mark.parametrize(("target", "provider", "command"), OPTIONAL, ids=[t for t, _, _ in OPTIONAL])
def test_tools_of_other_issues_run_or_say_they_are_not_there_yet(target: str, provider: str, command: str):
    if (ROOT / provider).exists():
        assert command in make("-n", target).stdout
    else:
        result = make(target)
        assert result.returncode != 0
        assert f"make {target}: not available yet ({provider} is not in this checkout)." in result.stderr


def test_gpu_says_when_there_is_no_driver():
    result = make("gpu", env={"PATH": "/usr/bin:/bin"})  # a PATH without nvidia-smi on machines that have it
    if Path("/usr/bin/nvidia-smi").exists():
        pytest.skip("nvidia-smi is installed in /usr/bin")
    assert result.returncode != 0 and "nvidia-smi not found" in result.stderr


def test_make_test_runs_pytest():
    # A small selection, so the real target runs without recursing into the whole suite.
    result = make("test", env={"PYTEST_ADDOPTS": "tests/test_graph.py -k parse_route"}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b\d+ passed\b", result.stdout) and "failed" not in result.stdout


def test_make_run_on_the_simulator_then_health_and_status(tmp_path: Path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "make-run.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PRIMARY_", "CLASSIFIER_", "XAI_", "LANGSMITH_"))
    }
    env.update(
        PORT=str(port), HOST="127.0.0.1", SIMULATOR="on", SIM_TOKEN_DELAY_MS="0", LANGSMITH_TRACING="false",
        # `make run` works in the repository: keep its session records and traces out of it.
        SESSION_LOG_DIR=str(tmp_path / "sessions"), TRACE_LOG_DIR=str(tmp_path / "traces"),
    )
    with log_path.open("w") as log:
        # Its own process group, so the test can stop make, the router and the simulator together.
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run", *LOCAL],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_serving(process, f"{url}/v1/models", log_path)

        health = make("health", f"ROUTER_URL={url}")
        assert health.returncode == 0, health.stdout + health.stderr
        lines = health.stdout.splitlines()
        assert lines[0] == f"ai-router {url}/health -> HTTP 200, status ok"
        for name in ("primary", "classifier", "xai"):
            assert any(re.match(rf"^  ok +{name} +http://127\.0\.0\.1:\d+/v1 ", line) for line in lines), (
                lines
            )

        status = make("status", f"ROUTER_URL={url}")
        assert status.returncode == 0
        assert status.stdout.strip() == f"ai-router {url}: ok (primary ok, classifier ok, xai ok)"

        sim_url = re.search(r"embedded simulator at (http://\S+)/v1", log_path.read_text()).group(1)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        finally:
            try:  # nothing of this group may outlive the test
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    # Both the router and its simulator are gone.
    for gone in (url, sim_url):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{gone}/health", timeout=1)
    down = make("health", f"ROUTER_URL={url}")
    assert down.returncode == 2 and "unreachable" in down.stderr


def test_make_studio_serves_the_graph_on_the_simulator(tmp_path: Path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "make-studio.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PRIMARY_", "CLASSIFIER_", "XAI_", "LANGSMITH_", "LANGGRAPH_"))
    }
    env.update(STUDIO_PORT=str(port), SIMULATOR="on", SIM_TOKEN_DELAY_MS="0")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "studio", *LOCAL],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_serving(process, f"{url}/ok", log_path, timeout=90)
        with httpx.Client(base_url=url, timeout=60) as client:
            thread = client.post("/threads", json={}).json()["thread_id"]
            run = client.post(
                f"/threads/{thread}/runs/wait",
                json={
                    "assistant_id": "ai-router",
                    "input": {"messages": [{"role": "user", "content": "hi!"}]},
                    "context": {"dry_run": True},
                },
            )
            assert run.status_code == 200, run.text
            values = client.get(f"/threads/{thread}/state").json()["values"]
        # Decided by the simulator's classifier, not by a failure fallback.
        assert values["route_reason"] == "classifier" and values["classification_raw"]
        assert "embedded simulator at http://127.0.0.1:" in log_path.read_text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        finally:
            try:  # nothing of this group may outlive the test
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/ok", timeout=1)
