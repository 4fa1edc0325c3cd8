"""Every request leaves exactly one valid session record and a LangSmith-format trace."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from langsmith.schemas import Run

from core.sessions.store import rotate
from tests.conftest import (
    PRIMARY_MODEL,
    ROOT,
    SESSION_SCHEMA,
    TEST_XAI_KEY,
    sim_env,
    start_router,
    stop_router,
    wait_for_record,
)
from tests.test_chat_routes import TITLE_TASK

ROUTE_CASES = [
    ("hello", "SIMPLE", ["classify", "generate"]),
    ("Explain how TCP slow start works #route=MODERATE", "MODERATE", ["classify", "generate"]),
    ("Prove the Cauchy-Schwarz inequality", "COMPLEX", ["classify", "generate"]),
    ("What is the latest news on fusion power?", "ENRICH", ["classify", "enrich", "generate"]),
    (TITLE_TASK, "META", ["generate"]),
]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(("question", "label", "nodes"), ROUTE_CASES, ids=[c[1] for c in ROUTE_CASES])
def test_each_route_writes_a_valid_record(router, sim_reset, question, label, nodes, stream):
    client = router.client()
    messages = [{"role": "user", "content": question}]
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model="ai-router", messages=messages, stream=True, temperature=0.2
        ) as response:
            session_id = response.headers["x-session-id"]
            list(response.parse())
    else:
        session_id = client.chat.completions.create(model="ai-router", messages=messages, temperature=0.2).id
    record = wait_for_record(router, session_id)
    assert record["route_label"] == label
    assert [s["node"] for s in record["steps"]] == nodes
    assert all(s["status"] == "ok" for s in record["steps"])
    assert record["error"] is None and record["status_code"] == 200
    assert record["user_query"] == question[:500]
    assert record["params"]["temperature"] == 0.2
    assert record["stream"] is stream
    assert (record["ttft_ms"] is not None) is stream
    assert record["trace_id"] and list(router.trace_dir.glob(f"*_{session_id}.jsonl"))
    assert record["steps"][-1]["response_content"].startswith("[sim:")
    if label == "META":
        assert record["route"] == "meta" and record["client"]["task"] == "title"
        assert record["classification_raw"] is None
    else:
        assert record["classification_raw"] == label and record["classification_ms"] > 0
    if label == "ENRICH":
        search = record["steps"][1]
        assert search["provider"] == "xai" and search["url"].endswith("/responses") and search["citations"]


def test_trace_loads_with_langsmith_run_model(router, sim_reset):
    session_id = router.client().chat.completions.create(
        model="ai-router", messages=[{"role": "user", "content": "What's the weather in Oslo today?"}]
    ).id
    record = wait_for_record(router, session_id)
    trace = next(router.trace_dir.glob(f"*_{session_id}.jsonl"))
    runs = [Run(**json.loads(line)) for line in trace.read_text().splitlines()]
    root = runs[0]
    assert str(root.id) == record["trace_id"] and root.parent_run_id is None
    assert {str(r.trace_id) for r in runs} == {record["trace_id"]}
    by_name = {r.name: r for r in runs}
    assert {"meta_check", "classify", "enrich", "generate"} <= set(by_name)
    llm_runs = [r for r in runs if r.run_type == "llm"]
    assert len(llm_runs) == 3  # classifier, xAI search, primary
    assert all(r.dotted_order.startswith(root.dotted_order) for r in runs)
    generation = [r for r in llm_runs if r.parent_run_id == by_name["generate"].id][0]
    assert generation.outputs["usage_metadata"]["output_tokens"] > 0
    assert generation.end_time >= generation.start_time


def test_dry_run_is_marked(router, sim_reset):
    decision = httpx.post(f"{router.url}/api/route",
                          json={"dry_run": True, "messages": [{"role": "user", "content": "hello"}]}).json()
    record = wait_for_record(router, decision["session_id"])
    assert record["dry_run"] is True and record["route"] == "router" and record["route_label"] == "SIMPLE"
    assert [s["node"] for s in record["steps"]] == ["classify"]


def test_upstream_500_writes_a_record(router, sim_reset):
    httpx.post(f"{sim_reset.url}/sim/faults", json={"fault": "500", "model": "sim-primary", "count": -1}).raise_for_status()
    response = httpx.post(f"{router.v1}/chat/completions", json={"messages": [{"role": "user", "content": "hello"}]})
    assert response.status_code == 502
    record = wait_for_record(router, response.headers["x-session-id"])
    assert record["status_code"] == 502 and "primary answered HTTP 500" in record["error"]
    assert record["steps"][-1]["status"] == "error"


def test_bad_request_writes_a_record(router):
    response = httpx.post(f"{router.v1}/chat/completions", json={"messages": "not a list"})
    assert response.status_code == 400
    record = wait_for_record(router, response.headers["x-session-id"])
    assert record["status_code"] == 400 and record["route_label"] is None and "messages" in record["error"]


def test_client_disconnect_mid_stream_writes_a_record_with_error(router, sim_reset):
    httpx.post(f"{sim_reset.url}/sim/config", json={"token_delay_ms": 100, "tokens": 50}).raise_for_status()
    with httpx.stream("POST", f"{router.v1}/chat/completions",
                      json={"stream": True, "messages": [{"role": "user", "content": "hello"}]}) as response:
        session_id = response.headers["x-session-id"]
        answered_by = response.headers["x-ai-router-model"]
        next(response.iter_lines())  # the first chunk arrived; now hang up
    record = wait_for_record(router, session_id)
    assert record["error"] and "disconnected" in record["error"]
    assert record["status_code"] == 499
    # The record names the model that was answering, as the response header did (issue #23).
    assert answered_by == PRIMARY_MODEL and record["served_model"] == answered_by
    shown = subprocess.run([sys.executable, "-m", "tools.sessions", "--dir", str(router.session_dir), "show",
                            session_id], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert f"served_model        {answered_by}" in shown


def test_fifty_concurrent_requests_write_fifty_records(router, sim_reset):
    async def burst() -> list[str]:
        client = openai.AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0)
        async def one(i: int) -> str:
            reply = await client.chat.completions.create(
                model="ai-router", messages=[{"role": "user", "content": f"hello number {i}"}])
            return reply.id
        try:
            return await asyncio.gather(*(one(i) for i in range(50)))
        finally:
            await client.close()

    ids = asyncio.run(burst())
    assert len(set(ids)) == 50
    records = [wait_for_record(router, i) for i in ids]
    assert sorted(r["user_query"] for r in records) == sorted(f"hello number {i}" for i in range(50))


def test_secrets_never_reach_records_traces_or_logs(router, sim_reset):
    client = router.client(api_key="sk-client-secret-abcdef123456")
    session_id = client.chat.completions.create(
        model="ai-router",
        messages=[{"role": "user", "content": "my key is xai-pastedkey987654321 and Bearer tok_ABCDEF123456"}],
    ).id
    wait_for_record(router, session_id)
    written = [p.read_text() for p in (*router.session_dir.glob("*"), *router.trace_dir.glob("*"))]
    written.append(router.log())
    blob = "\n".join(written)
    for secret in (TEST_XAI_KEY, "sk-client-secret-abcdef123456", "xai-pastedkey987654321", "tok_ABCDEF123456"):
        assert secret not in blob
    assert "[REDACTED]" in blob


def test_feedback_attaches_to_the_record(router, sim_reset):
    session_id = router.client().chat.completions.create(
        model="ai-router", messages=[{"role": "user", "content": "hello"}]).id
    response = httpx.post(f"{router.v1}/feedback",
                          json={"response_id": session_id, "score": -1, "comment": "too short",
                                "expected_route": "moderate"})
    assert response.status_code == 200 and response.json()["status"] == "recorded"
    deadline = time.monotonic() + 10
    while not (record := wait_for_record(router, session_id))["feedback"]:  # written by the writer thread
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert record["feedback"][0]["score"] == -1 and record["feedback"][0]["expected_route"] == "MODERATE"


@pytest.mark.parametrize(("body", "status"), [
    ({"response_id": "chatcmpl-" + "0" * 32, "score": 1}, 404),
    ({"response_id": "chatcmpl-" + "0" * 12, "score": 1}, 404),  # a prefix no session here starts with
    ({"response_id": "nope", "score": 1}, 400),
    ({"response_id": "chatcmpl-" + "0" * 32, "score": 99}, 400),
])
def test_feedback_rejects_unknown_or_invalid(router, body, status):
    response = httpx.post(f"{router.v1}/feedback", json=body)
    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_content_mode_none_keeps_no_text(sim, tmp_path):
    httpx.post(f"{sim.url}/sim/reset").raise_for_status()
    server = start_router(sim_env(sim, SESSION_LOG_CONTENT="none"), tmp_path)
    try:
        secret_text = "my private diary entry about zebras"
        session_id = server.client().chat.completions.create(
            model="ai-router", messages=[{"role": "user", "content": secret_text}]).id
        record = wait_for_record(server, session_id)
        assert record["user_query"] is None and record["user_query_chars"] == len(secret_text)
        assert record["content_mode"] == "none" and record["route_label"] and record["total_ms"] > 0
        blob = "".join(p.read_text() for p in (*server.session_dir.glob("*"), *server.trace_dir.glob("*")))
        assert "zebras" not in blob
        assert record["steps"][-1]["response_chars"] > 0
    finally:
        stop_router(server)


def test_rotation_removes_old_and_surplus_files(tmp_path):
    now = time.time()
    for index in range(10):
        path = tmp_path / f"2026010{index}T000000.000000Z_chatcmpl-{index:032x}.json"
        path.write_text("{}")
        age_days = 30 if index < 3 else 0
        os.utime(path, (now - age_days * 86400, now - age_days * 86400))
    assert rotate(tmp_path, max_age_days=7, max_files=5, now=now) == 5
    remaining = sorted(p.name for p in tmp_path.iterdir())
    assert len(remaining) == 5 and remaining[0].startswith("20260105")  # newest five kept


def test_sessions_cli_lists_shows_and_exports(router, sim_reset, tmp_path):
    session_id = router.client().chat.completions.create(
        model="ai-router", messages=[{"role": "user", "content": "Prove the four colour theorem"}]).id
    wait_for_record(router, session_id)

    def cli(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "tools.sessions", "--dir", str(router.session_dir), *args],
                              cwd=ROOT, capture_output=True, text=True, check=True).stdout

    assert "Prove the four colour theorem" in cli("list", "--label", "COMPLEX", "--since", "1h")
    assert "Prove the four colour" not in cli("list", "--route", "meta")
    shown = cli("show", session_id)
    assert "step 1: classify" in shown and "step 2: generate" in shown and "grok" in shown
    out = tmp_path / "export.jsonl"
    cli("export", "--route", "xai", "--out", str(out))
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert exported and all(r["route"] == "xai" for r in exported)
    assert session_id in {r["session_id"] for r in exported}


def _cli(router, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.sessions", "--dir", str(router.session_dir), *args],
                          cwd=ROOT, capture_output=True, text=True)


def test_feedback_takes_the_id_sessions_list_shows_and_times_carry_their_offset(router, sim_reset):
    question = "hello from the listing"
    session_id = router.client().chat.completions.create(
        model="ai-router", messages=[{"role": "user", "content": question}]).id
    wait_for_record(router, session_id)
    line = next(line for line in _cli(router, "list", "--limit", "200").stdout.splitlines() if question in line)
    stamp, shown_id = line.split()[:2]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", stamp), line  # issue #23: the offset
    response = httpx.post(f"{router.v1}/feedback", json={"response_id": shown_id, "score": 1})
    assert response.status_code == 200, response.text
    assert response.json()["response_id"] == session_id
    # What older listings showed (20 characters) is a prefix only this session has: accepted too.
    response = httpx.post(f"{router.v1}/feedback", json={"response_id": session_id[:20], "score": -1})
    assert response.status_code == 200, response.text
    assert response.json()["response_id"] == session_id
    deadline = time.monotonic() + 10
    while len((record := wait_for_record(router, session_id))["feedback"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert [f["score"] for f in record["feedback"]] == [1, -1]


def test_an_ambiguous_id_prefix_gets_a_clear_400(router):
    twins = [f"chatcmpl-0dd0dd0d{suffix * 24}" for suffix in "ab"]
    files = [router.session_dir / f"20200101T000000.00000{i}Z_{sid}.json" for i, sid in enumerate(twins)]
    try:
        for path, sid in zip(files, twins, strict=True):
            path.write_text(json.dumps({"session_id": sid, "timestamp": "2020-01-01T00:00:00+00:00"}))
        response = httpx.post(f"{router.v1}/feedback", json={"response_id": "chatcmpl-0dd0dd0d", "score": 1})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == "response_id" and "2 session ids" in error["message"]
        shown = _cli(router, "show", "chatcmpl-0dd0dd0d")
        assert shown.returncode == 1 and "2 session ids" in shown.stderr
        assert httpx.post(f"{router.v1}/feedback",
                          json={"response_id": twins[0][:20], "score": 1}).status_code == 200  # unique again
    finally:
        for path in files:
            path.unlink(missing_ok=True)


def test_upload_traces_needs_a_key(router):
    env = {k: v for k, v in os.environ.items() if "LANGSMITH" not in k and "LANGCHAIN" not in k}
    result = subprocess.run([sys.executable, "-m", "tools.sessions", "upload-traces"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "LANGSMITH_API_KEY" in result.stderr


def test_schema_is_valid_json_schema():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(SESSION_SCHEMA)
    assert Path(ROOT / "core" / "sessions" / "session.schema.json").is_file()


def test_upload_traces_sends_rows_to_a_langsmith_endpoint(router, sim_reset, tmp_path):
    """A LangSmith stand-in on 127.0.0.1 receives the local traces, unchanged."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            received.append((self.path, self.rfile.read(length)))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        do_POST = do_GET = do_PATCH = _answer

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        session_id = router.client().chat.completions.create(
            model="ai-router", messages=[{"role": "user", "content": "upload me please"}]).id
        record = wait_for_record(router, session_id)
        env = {k: v for k, v in os.environ.items() if "LANGSMITH" not in k and "LANGCHAIN" not in k}
        env.update({"LANGSMITH_API_KEY": "lsv2-test-key-not-real", "TRACE_LOG_DIR": str(router.trace_dir),
                    "LANGSMITH_ENDPOINT": f"http://127.0.0.1:{server.server_port}", "LANGSMITH_TRACING": "false"})
        result = subprocess.run([sys.executable, "-m", "tools.sessions", "upload-traces"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "uploaded" in result.stdout
        bodies = b"".join(body for path, body in received if "/runs" in path)
        seen = [(path, len(body)) for path, body in received]
        assert record["trace_id"].encode() in bodies and b"upload me please" in bodies, (seen, result.stdout,
                                                                                          result.stderr[-2000:])
    finally:
        server.shutdown()
