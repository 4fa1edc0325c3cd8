"""The add-a-route edit from the README, applied to a copy of the project, works end to end."""

from __future__ import annotations

import shutil

import httpx

from tests.conftest import PRIMARY_MODEL, ROOT, sim_calls, sim_env, start_router, stop_router

# The README's worked example, verbatim in spirit: one table entry, one prompt, one line.
ROUTE_ENTRY = '    "TRANSLATE": RouteSpec(backend="primary", prompt="translate/system"),\n'
PROMPT = "You are a careful translator. Translate the user's text faithfully, keeping its tone.\n"
ROUTING_LINE = "- TRANSLATE: translating a text from one language into another.\n"


def _copy_project(target):
    for name in ("core", "graph", "nodes", "prompts"):
        shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "server.py", target / "server.py")


def _apply_edit(project):
    routes = project / "core" / "routes.py"
    text = routes.read_text()
    anchor = "ROUTES: dict[str, RouteSpec] = {\n"
    assert anchor in text
    routes.write_text(text.replace(anchor, anchor + ROUTE_ENTRY))
    (project / "prompts" / "translate").mkdir()
    (project / "prompts" / "translate" / "system.md").write_text(PROMPT)
    routing = project / "prompts" / "routing" / "system.md"
    text = routing.read_text()
    anchor = "- ENRICH:"
    routing.write_text(text.replace(anchor, ROUTING_LINE + anchor))


def test_adding_a_route_is_one_entry_one_prompt_one_line(sim, tmp_path):
    project = tmp_path / "project"
    _copy_project(project)
    _apply_edit(project)
    httpx.post(f"{sim.url}/sim/reset").raise_for_status()
    server = start_router(sim_env(sim), tmp_path, cwd=project)
    try:
        raw = server.client().chat.completions.with_raw_response.create(
            model="ai-router",
            messages=[{"role": "user", "content": "Translate 'good morning' into German #route=TRANSLATE"}],
        )
        assert raw.headers["x-ai-router-route"] == "TRANSLATE"
        assert raw.headers["x-ai-router-reason"] == "classifier"
        calls = sim_calls(sim)
        classifier_prompt = calls[0]["body"]["messages"]
        assert "TRANSLATE" in classifier_prompt[0]["content"] and "TRANSLATE" in classifier_prompt[1]["content"]
        generation = [c for c in calls if c["model"] == PRIMARY_MODEL][0]["body"]["messages"][0]["content"]
        assert generation.startswith("You are a careful translator.")
        decision = httpx.post(
            f"{server.url}/api/route", json={"route": "translate", "dry_run": True,
                                              "messages": [{"role": "user", "content": "x"}]},
        ).json()
        assert decision["route"] == "TRANSLATE" and decision["backend"] == "primary"
    finally:
        stop_router(server)
