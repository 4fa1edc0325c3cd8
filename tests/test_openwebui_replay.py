"""Open WebUI's own task requests, replayed through a running router as Open WebUI sends them.

The requests are rendered from Open WebUI 0.12.4's templates (`open_webui/config.py`, from
its PyPI wheel; see `tests/fixtures/meta_prompts/README.md`). Open WebUI sends each task as
one non-streaming chat request to the chat's model with `max_tokens: 1000`, no system
prompt and no task header. Each must be routed META, answered by the primary model, and
never reach the classifier or xAI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CLASSIFIER_MODEL, PRIMARY_MODEL, Router, sim_calls

FIXTURES = Path(__file__).parent / "fixtures" / "meta_prompts"
VERSION = "open-webui 0.12.4"
# The tasks Open WebUI runs around a chat (issue 8): each must be among the replayed requests.
TASKS = {"title", "tags", "follow_ups", "queries", "autocomplete", "emoji"}


def current_release_fixtures() -> list[Path]:
    """The fixtures rendered from the current Open WebUI release's templates."""
    paths = []
    for path in sorted(FIXTURES.glob("openwebui_*.json")):
        if json.loads(path.read_text(encoding="utf-8"))["source"].startswith(VERSION):
            paths.append(path)
    return paths


FIXTURE_PATHS = current_release_fixtures()


def test_every_open_webui_task_is_replayed():
    tasks = {json.loads(p.read_text(encoding="utf-8"))["task"] for p in FIXTURE_PATHS}
    assert tasks >= TASKS, TASKS - tasks


@pytest.mark.parametrize("path", FIXTURE_PATHS, ids=lambda p: p.stem)
def test_open_webui_task_is_meta_and_answered_by_the_primary(router: Router, sim_reset, path: Path):
    fixture: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    client = router.client()
    raw = client.chat.completions.with_raw_response.create(
        model="ai-router",
        messages=fixture["messages"],
        stream=False,
        max_tokens=1000,
    )
    completion = raw.parse()
    assert raw.headers["x-ai-router-route"] == "META", raw.headers.get("x-ai-router-reason")
    assert raw.headers["x-ai-router-reason"].startswith("meta rule openwebui.")
    assert raw.headers["x-ai-router-path"] == "meta" and raw.headers["x-ai-router-backend"] == "primary"
    assert raw.headers["x-ai-router-model"] == PRIMARY_MODEL
    assert completion.model == "ai-router" and completion.choices[0].message.content
    calls = sim_calls(sim_reset)
    assert [c["model"] for c in calls] == [PRIMARY_MODEL]  # no classifier, no xAI, one answer
    assert CLASSIFIER_MODEL not in {c["model"] for c in calls}
    sent = calls[0]["body"]
    assert sent["max_tokens"] == 1000  # streamed from the backend, assembled here (tests/test_bounded_waits.py)
    # The task prompt reached the primary model unchanged, after the META system prompt.
    assert sent["messages"][-1] == fixture["messages"][-1]
    assert sent["messages"][0]["role"] == "system"
