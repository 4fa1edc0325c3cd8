"""The two agent CLIs, driven non-interactively at a real router on the simulator.

OpenAI's Codex CLI speaks the Responses API (always streaming, `store: false`, `developer`
messages, its own tools); Claude Code speaks the Anthropic Messages API (`x-api-key`,
`?beta=true`, streaming, `role: system` entries and a dozen or more tools). Both come pinned from
npm (`clients/package.json`, installed by `make test` as `npm ci --prefix clients`) and are
configured, as STACK-NOTES.md says, to touch nothing but 127.0.0.1. Each test is skipped with
its reason when Node or the package is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CLASSIFIER_MODEL, ROOT, Router, sim_calls

BIN = ROOT / "clients" / "node_modules" / ".bin"
PROMPT = "Reply with the word pong"


def _cli(name: str) -> Path:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed: the Codex CLI and Claude Code tests need it (then `make clients`)")
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is missing: run `make clients` (npm ci --prefix clients)")
    return path


def _records(router: Router, endpoint: str, before: set[Path]) -> list[dict]:
    """Session records of `endpoint` written since `before` (records are written off the request path)."""
    records = []
    for path in sorted(set(router.session_dir.glob("*.json")) - before):
        record = json.loads(path.read_text())
        if record["endpoint"] == endpoint:
            records.append(record)
    return records


def _wait_records(router: Router, endpoint: str, before: set[Path]) -> list[dict]:
    deadline = time.monotonic() + 10
    while not (found := _records(router, endpoint, before)):  # bounded poll on the record's file
        assert time.monotonic() < deadline, f"no {endpoint} session record"
        time.sleep(0.05)
    return found


def _clean_env(home: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    return {**{k: v for k, v in os.environ.items() if k in keep}, "HOME": str(home), "NO_COLOR": "1"}


def _codex(router: Router, tmp_path: Path, prompt: str) -> subprocess.CompletedProcess[str]:
    """`codex exec` at `router`, configured as STACK-NOTES.md says (loopback only)."""
    codex = _cli("codex")
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(f"""
model = "ai-router"
model_provider = "airouter"
check_for_update_on_startup = false

[model_providers.airouter]
name = "ai-router"
base_url = "{router.v1}"
env_key = "AI_ROUTER_KEY"
wire_api = "responses"

[analytics]
enabled = false

[features]
plugins = false
""")
    work = tmp_path / "work"
    work.mkdir()
    return subprocess.run(
        [str(codex), "exec", "--skip-git-repo-check", prompt], cwd=work, stdin=subprocess.DEVNULL,
        env={**_clean_env(home), "CODEX_HOME": str(home), "AI_ROUTER_KEY": "unused"},
        capture_output=True, text=True, timeout=60)


def test_codex_exec(router, sim_reset, tmp_path):
    before = set(router.session_dir.glob("*.json"))
    done = _codex(router, tmp_path, PROMPT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[sim:" in done.stdout and PROMPT in done.stdout  # the simulator's answer, printed by Codex
    (record,) = _wait_records(router, "responses", before)
    assert record["status_code"] == 200 and record["stream"] is True and record["user_query"] == PROMPT
    assert record["params"]["tools"], "Codex offers its tools (shell, apply_patch, …)"
    sent = _generation_calls(sim_reset)
    assert sent and sent[-1]["messages"][0]["role"] == "system"  # its developer messages, as one system turn


def test_codex_runs_a_tool_loop_through_the_router(router, sim_reset, tmp_path):
    # The simulator answers "run a shell command" with a call of Codex's `exec_command` tool
    # (arguments following its schema: `cmd` is the asker's words, which no shell knows, so
    # nothing runs); Codex runs it and sends the output back, replaying the whole conversation.
    before = set(router.session_dir.glob("*.json"))
    done = _codex(router, tmp_path, "Run a shell command: echo pong")
    assert done.returncode == 0, done.stdout + done.stderr
    records = sorted(_wait_records(router, "responses", before), key=lambda r: r["timestamp"])
    deadline = time.monotonic() + 10
    while len(records) < 2 and time.monotonic() < deadline:
        records = sorted(_records(router, "responses", before), key=lambda r: r["timestamp"])
    first, second = records
    assert second["route_label"] == first["route_label"] and "tool loop" in second["route_reason"]
    replayed = _generation_calls(sim_reset)[-1]["messages"]
    call = next(m for m in replayed if m.get("tool_calls"))["tool_calls"][0]
    assert call["function"]["name"] == "exec_command" and "cmd" in json.loads(call["function"]["arguments"])
    assert replayed[-1]["role"] == "tool" and replayed[-1]["tool_call_id"] == call["id"]
    assert "tool said:" in done.stdout


def test_claude_code_print(router, sim_reset, tmp_path):
    claude = _cli("claude")
    home = tmp_path / "claude-home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    before = set(router.session_dir.glob("*.json"))
    done = subprocess.run(
        [str(claude), "-p", PROMPT], cwd=work, stdin=subprocess.DEVNULL,
        env={**_clean_env(home), "ANTHROPIC_BASE_URL": router.url, "ANTHROPIC_API_KEY": "unused-key",
             "ANTHROPIC_MODEL": "ai-router", "DISABLE_TELEMETRY": "1",
             "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
        capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[sim:" in done.stdout  # the simulator's answer, printed by Claude Code
    records = _wait_records(router, "messages", before)
    assert all(r["status_code"] == 200 for r in records)
    main = max(records, key=lambda r: len(r["params"].get("tools") or ()))
    assert main["stream"] is True and len(main["params"]["tools"]) >= 10  # Claude Code's own tools
    asked = _generation_calls(sim_reset)[-1]["messages"]
    assert PROMPT in asked[-1]["content"]  # its system reminders and the prompt, as one user turn
    assert asked[0]["role"] == "system"  # its system prompt and `role: system` entries, as one system turn


def _generation_calls(sim) -> list[dict]:
    return [c for c in sim_calls(sim) if c["path"].endswith("/chat/completions") and c["model"] != CLASSIFIER_MODEL]
