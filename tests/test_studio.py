"""LangGraph Studio: `langgraph dev` serves the graph, a run can be paused, edited and resumed.

One `langgraph dev` server (in memory, loopback only, no LangSmith key, tracing and CLI
analytics off) is started for the module, with its backends on the simulator. Runs are
driven through its HTTP API exactly as Studio drives them, and their decisions compared
with the router's `/api/route` dry run. Stepping is tested through LangGraph's own API.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from core.services import build_services
from core.settings import Settings
from graph.build import build_graph
from core.context import RouterContext
from tests.conftest import PRIMARY_MODEL, ROOT, Router, free_port, sim_calls, sim_env, wait_until_serving

FIXTURES = ROOT / "tests" / "fixtures" / "meta_prompts"
XAI_MODEL = "grok-4-1-fast-reasoning"  # the Settings default, which the simulator serves


@dataclass
class Studio:
    """A running `langgraph dev` server."""

    url: str
    log_path: Path


@pytest.fixture(scope="module")
def studio(sim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    """`langgraph dev` on a free loopback port."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("studio") / "langgraph-dev.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PRIMARY_", "CLASSIFIER_", "XAI_", "LANGSMITH_", "LANGCHAIN_", "LANGGRAPH_"))
    }
    env.update(sim_env(sim), LANGSMITH_TRACING="false", LANGGRAPH_CLI_NO_ANALYTICS="1", PYTHONUNBUFFERED="1")
    command = [
        sys.executable,
        "-c",
        "import sys; from langgraph_cli.cli import cli; sys.exit(cli())",
        "dev",
        "--no-browser",
        "--no-reload",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, f"{url}/ok", log_path, timeout=90)
        yield Studio(url, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def studio_run(url: str, messages: list[dict[str, Any]], context: dict[str, Any]) -> dict[str, Any]:
    """Create a thread, run the graph on it to the end, and return the thread's final state."""
    with httpx.Client(base_url=url, timeout=60) as client:
        thread = client.post("/threads", json={}).json()["thread_id"]
        run = client.post(
            f"/threads/{thread}/runs/wait",
            json={"assistant_id": "ai-router", "input": {"messages": messages}, "context": context},
        )
        assert run.status_code == 200, run.text
        state = client.get(f"/threads/{thread}/state")
        assert state.status_code == 200, state.text
        return state.json()


def fixture_messages(name: str) -> list[dict[str, Any]]:
    """The messages of one META fixture."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))["messages"]


# --------------------------------------------------------------------------- configuration


def test_langgraph_json_points_at_the_compiled_graph():
    config = json.loads((ROOT / "langgraph.json").read_text(encoding="utf-8"))
    assert config["dependencies"] == ["."]
    module, attribute = config["graphs"]["ai-router"].split(":")
    assert module == "./graph/studio.py" and attribute == "graph"
    from graph import build, studio

    compiled = getattr(studio, attribute)
    assert compiled is build.graph and compiled.name == "ai-router"
    assert compiled.get_input_jsonschema()["required"] == ["messages"]
    # The run-level knobs only (request > environment > default); never the services objects.
    assert set(compiled.get_context_jsonschema()["properties"]) == {
        "forced_route", "dry_run", "stream", "local_classifier", "local_classifier_threshold", "prompts_dir"}


def test_committed_graph_picture_matches_the_graph():
    result = subprocess.run(
        [sys.executable, "scripts/draw_graph.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    from graph.build import graph

    picture = (ROOT / "docs" / "graph.mmd").read_text(encoding="utf-8")
    assert picture == graph.get_graph().draw_mermaid()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "```mermaid\n" + picture.rstrip("\n") + "\n```" in readme


# --------------------------------------------------------------------------- langgraph dev


def test_studio_server_lists_the_graph_with_its_schemas(studio: str):
    assistants = httpx.post(f"{studio.url}/assistants/search", json={}, timeout=30).json()
    assert [a["graph_id"] for a in assistants] == ["ai-router"]
    schemas = httpx.get(f"{studio.url}/assistants/{assistants[0]['assistant_id']}/schemas", timeout=30).json()
    assert "messages" in schemas["input_schema"]["properties"]
    assert "route" in schemas["state_schema"]["properties"]
    assert "dry_run" in schemas["context_schema"]["properties"]


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "Prove that there are infinitely many primes, rigorously."}],
        [{"role": "user", "content": "hi!"}],
        fixture_messages("openwebui_title.json"),
    ],
    ids=["classified-a", "classified-b", "meta"],
)
def test_studio_decides_the_route_the_router_decides(studio: Studio, router: Router, sim_reset, messages):
    in_studio = studio_run(studio.url, messages, {"dry_run": True})["values"]
    via_router = httpx.post(
        f"{router.url}/api/route",
        timeout=60,
        json={"model": "ai-router", "messages": messages, "dry_run": True},
    ).json()
    assert in_studio["route"] == via_router["route_label"]
    assert in_studio["backend"] == via_router["backend"]
    assert in_studio["route_reason"] == via_router["route_reason"]
    assert "response" not in in_studio or in_studio["response"] is None  # a dry run generates nothing


def test_studio_full_run_is_answered_by_the_backend(studio: Studio, sim_reset):
    state = studio_run(studio.url, fixture_messages("openwebui_tags.json"), {})
    values = state["values"]
    assert values["route"] == "META" and values["served_model"] == PRIMARY_MODEL
    assert values["response"]["choices"][0]["message"]["content"]
    assert state["next"] == []
    assert [c["model"] for c in sim_calls(sim_reset)] == [PRIMARY_MODEL]


def test_studio_breakpoint_edit_and_resume_as_the_readme_shows(studio: Studio, sim_reset):
    """The README's SDK snippet against the dev server: pause before generate, edit, resume."""
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=studio.url)
    thread = client.threads.create()["thread_id"]
    client.runs.wait(
        thread,
        "ai-router",
        input={"messages": [{"role": "user", "content": "hi!"}]},
        interrupt_before=["generate"],
    )
    paused = client.threads.get_state(thread)
    assert paused["next"] == ["generate"]
    assert paused["values"]["backend"] == "primary" and not paused["values"].get("response")
    client.threads.update_state(
        thread, {"route": "COMPLEX", "backend": "xai", "route_reason": "edited in Studio"}
    )
    client.runs.wait(thread, "ai-router", input=None)
    final = client.threads.get_state(thread)
    assert final["next"] == []
    assert final["values"]["route_reason"] == "edited in Studio"
    assert final["values"]["served_model"] == XAI_MODEL
    assert [c["model"] for c in sim_calls(sim_reset)][-1] == XAI_MODEL


# --------------------------------------------------------------------------- stepping


@pytest.fixture()
def in_process_backends(sim_reset, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings pointed at the simulator, for in-process graph runs."""
    for key, value in sim_env(sim_reset).items():
        monkeypatch.setenv(key, value)
    yield Settings()


def test_pause_before_classify_and_generate_edit_the_route_and_resume(in_process_backends, sim_reset):
    """The Studio workflow, through LangGraph's API: breakpoints, inspect, update_state, resume."""

    async def step() -> tuple[list[tuple[str, ...]], dict[str, Any], dict[str, Any]]:
        graph = build_graph().compile(checkpointer=InMemorySaver(), interrupt_before=["classify", "generate"])
        config = {"configurable": {"thread_id": "studio-step"}}
        services = build_services(in_process_backends)
        context = RouterContext.from_settings(in_process_backends, services)
        stops = []
        try:
            await graph.ainvoke({"messages": [{"role": "user", "content": "hi!"}]}, config, context=context)
            stops.append((await graph.aget_state(config)).next)  # paused before classify
            await graph.ainvoke(None, config, context=context)
            paused = await graph.aget_state(config)
            stops.append(paused.next)  # paused before generate, the decision is in the state
            await graph.aupdate_state(
                config, {"route": "COMPLEX", "backend": "xai", "route_reason": "edited in Studio"}
            )
            stops.append((await graph.aget_state(config)).next)
            await graph.ainvoke(None, config, context=context)
            final = await graph.aget_state(config)
            return stops, dict(paused.values), dict(final.values)
        finally:
            await services.aclose()

    stops, paused, final = asyncio.run(step())
    assert stops == [("classify",), ("generate",), ("generate",)]
    assert paused["route"] != "COMPLEX" and paused["backend"] == "primary" and "response" not in paused
    assert final["route"] == "COMPLEX" and final["route_reason"] == "edited in Studio"
    assert final["served_model"] == XAI_MODEL
    calls = sim_calls(sim_reset)
    assert [c["model"] for c in calls][-1] == XAI_MODEL
    assert PRIMARY_MODEL not in [c["model"] for c in calls]  # the unedited route was never served


def test_studio_server_stays_offline(studio: Studio):
    # Started without a LangSmith key: no metadata upload loop, and no tracing to LangSmith.
    text = studio.log_path.read_text()
    assert "skipping metadata loop" in text
    assert "smith.langchain.com/api" not in text and "Failed to" not in text
