"""The review desk through a real router: who gets in, the JSON API, labels, feedback, the index, the overlay."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from core.http.desk.index import Filters, IndexReader, index_path, sync
from core.sessions.labels import load_labels
from evals import report
from prompts.overlay import PromptOverlay, ShippedPromptsError
from tests.conftest import ROOT, sim_env, start_router, stop_router, wait_for_record

ADMIN = "desk-admin-key-0123456789"
CLIENT = "desk-client-key-0123456789"
QUESTIONS = ["hello", "Prove that sqrt(2) is irrational", "Write a Python function that reverses a string"]


@pytest.fixture(scope="module")
def desk(sim, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("desk")
    router = start_router(sim_env(sim, ADMIN_API_KEY=ADMIN, ROUTER_API_KEYS=CLIENT,
                                  EVAL_LABELS_FILE=str(tmp / "labels.json"), PROMPTS_DIR=str(tmp / "prompts"),
                                  REVIEW_DESK_WORK_DIR=str(tmp / "work")), tmp)
    ids = {}
    for question in QUESTIONS:
        answer = httpx.post(f"{router.v1}/chat/completions", headers={"Authorization": f"Bearer {CLIENT}"},
                            json={"model": "ai-router", "messages": [{"role": "user", "content": question}]},
                            timeout=30)
        assert answer.status_code == 200, answer.text
        ids[question] = (answer.headers["x-session-id"], answer.headers["x-ai-router-route"])
    for sid, _ in ids.values():
        wait_for_record(router, sid)
    yield {"router": router, "ids": ids, "tmp": tmp}
    stop_router(router)


def api(desk, method: str, path: str, key: str | None = ADMIN, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, f"{desk['router'].url}{path}", headers=headers, timeout=30,
                         follow_redirects=False, **kwargs)


def listed(desk, want: set[str], query: str = "", deadline_s: float = 60) -> dict:
    """The sessions list once every id in `want` is in it (the index catches up off the request path)."""
    deadline = time.monotonic() + deadline_s
    while True:
        page = api(desk, "GET", f"/review/api/sessions?limit=200{query}").json()
        if want <= {s["id"] for s in page["sessions"]}:
            return page
        assert time.monotonic() < deadline, page
        time.sleep(0.2)


def chat_record(desk) -> dict:
    answer = httpx.post(f"{desk['router'].v1}/chat/completions", headers={"Authorization": f"Bearer {CLIENT}"},
                        json={"model": "ai-router", "messages": [{"role": "user", "content": "hello"}]}, timeout=30)
    return wait_for_record(desk["router"], answer.headers["x-session-id"])


def test_only_the_admin_key_opens_the_desk(desk):
    question = QUESTIONS[1]
    for path in ("/review/api/sessions", f"/review/api/sessions/{desk['ids'][question][0]}", "/review/api/overview"):
        assert api(desk, "GET", path, key=None).status_code == 401
        refused = api(desk, "GET", path, key=CLIENT)
        assert refused.status_code == 403 and question not in refused.text
        assert refused.json()["error"]["message"].startswith("A client key cannot")
        assert api(desk, "GET", path, key="made-up").status_code == 401
    for path in ("/review", "/review/sessions", f"/review/sessions/{desk['ids'][question][0]}", "/review/evals"):
        page = api(desk, "GET", path, key=None)
        assert page.status_code == 303 and page.headers["location"].startswith("/review/login?next=")
        refused = api(desk, "GET", path, key=CLIENT)  # a client key: refused outright, never a redirect
        assert refused.status_code == 403 and question not in refused.text
    assert api(desk, "POST", f"/review/api/sessions/{desk['ids'][question][0]}/label", key=CLIENT,
               json={"route": "COMPLEX"}).status_code == 403
    login = api(desk, "GET", "/review/login", key=None)  # reachable without a key, client keys or not
    assert login.status_code == 200 and 'type="password"' in login.text
    assert "ai_router_desk_csrf" in login.headers["set-cookie"]
    assert api(desk, "GET", "/stats", key=CLIENT).status_code == 403  # the same rule as /stats


def test_login_sets_an_httponly_strict_cookie_and_forms_need_the_csrf_token(desk):
    base = desk["router"].url
    with httpx.Client(base_url=base, timeout=30) as browser:
        browser.get("/review/login")
        token = browser.cookies["ai_router_desk_csrf"]
        wrong = browser.post("/review/login", data={"key": CLIENT, "csrf": token, "next": "/review/sessions"})
        assert wrong.status_code == 403 and "client key" in wrong.text
        assert browser.post("/review/login", data={"key": ADMIN, "next": "/review"}).status_code == 403  # no token
        done = browser.post("/review/login", data={"key": ADMIN, "csrf": token, "next": "/review/sessions"})
        assert done.status_code == 303 and done.headers["location"] == "/review/sessions"
        cookie = done.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/review" in cookie
        assert ADMIN not in done.headers["set-cookie"]  # the cookie is a signature, never the key
        assert browser.get("/review/sessions").status_code == 200
        sid = desk["ids"][QUESTIONS[0]][0]
        assert browser.post(f"/review/sessions/{sid}/label", data={"route": "SIMPLE"}).status_code == 403
        forged = browser.post(f"/review/sessions/{sid}/label", data={"route": "SIMPLE", "csrf": token},
                              headers={"Origin": "http://evil.example"})
        assert forged.status_code == 403
        labelled = browser.post(f"/review/sessions/{sid}/label", data={"route": "SIMPLE", "csrf": token, "rating": "5"})
        assert labelled.status_code == 303
        # The login cookie opens the API too, and a redirect never leaves the desk.
        assert browser.get("/review/api/sessions").status_code == 200
        assert browser.post("/review/login", data={"key": ADMIN, "csrf": token, "next": "https://evil.example/"}
                            ).headers["location"] == "/review"


def test_sessions_api_lists_newest_first_filters_and_pages(desk):
    ids = dict(desk["ids"].values())
    page = listed(desk, set(ids))
    mine = [s for s in page["sessions"] if s["id"] in ids]
    assert [s["id"] for s in mine] == [sid for sid, _ in reversed(list(desk["ids"].values()))]  # newest first
    assert all(s["route"] == ids[s["id"]] for s in mine)  # the route label, not the backend
    simple = api(desk, "GET", "/review/api/sessions?route=SIMPLE").json()["sessions"]
    assert simple and all(s["route"] == "SIMPLE" for s in simple)
    assert api(desk, "GET", "/review/api/sessions?route=simple").json()["sessions"] == simple
    assert api(desk, "GET", "/review/api/sessions?route=FAST").status_code == 400
    found = api(desk, "GET", "/review/api/sessions?q=sqrt(2)").json()["sessions"]
    assert [s["id"] for s in found] == [desk["ids"][QUESTIONS[1]][0]]
    first = api(desk, "GET", "/review/api/sessions?limit=1").json()
    second = api(desk, "GET", f"/review/api/sessions?limit=1&cursor={first['next']}").json()
    assert first["next"] and second["sessions"][0]["id"] != first["sessions"][0]["id"]


def test_detail_has_the_decision_the_path_and_the_trace(desk):
    sid, route = desk["ids"][QUESTIONS[1]]
    detail = api(desk, "GET", f"/review/api/sessions/{sid}").json()
    assert detail["id"] == sid and detail["route"] == route and detail["route_reason"]
    assert detail["backend"] and detail["record"]["session_id"] == sid
    assert [n["node"] for n in detail["graph_path"]][-1] == "generate"
    assert all(n["ms"] is not None and n["ms"] >= 0 for n in detail["graph_path"])
    assert detail["trace"] and {"id", "trace_id", "dotted_order"} <= set(detail["trace"][0])
    assert detail["conversation"][-1]["content"] == QUESTIONS[1]
    assert api(desk, "GET", "/review/api/sessions/chatcmpl-nope").status_code == 404


def test_labels_go_to_the_labels_file_and_show_in_the_session(desk):
    sid = desk["ids"][QUESTIONS[2]][0]
    assert api(desk, "POST", f"/review/api/sessions/{sid}/label", json={"route": "FAST"}).status_code == 400
    assert api(desk, "POST", "/review/api/sessions/chatcmpl-nope/label", json={"route": "COMPLEX"}).status_code == 404
    assert api(desk, "POST", f"/review/api/sessions/{sid}/label", content=b"{").status_code == 400
    done = api(desk, "POST", f"/review/api/sessions/{sid}/label", json={"route": "complex"})
    assert done.status_code == 200 and done.json()["label"] == "COMPLEX"
    assert load_labels(desk["tmp"] / "labels.json")[sid]["expected_route"] == "COMPLEX"  # the `label set` store
    assert api(desk, "GET", f"/review/api/sessions/{sid}").json()["label"] == "COMPLEX"
    other = desk["ids"][QUESTIONS[0]][0]
    bulk = api(desk, "POST", "/review/api/labels", json={"ids": [sid, other], "route": "MODERATE"})
    assert bulk.json() == {"labelled": 2, "route": "MODERATE"}
    deadline = time.monotonic() + 60
    while True:  # the index follows the labels file
        labelled = api(desk, "GET", "/review/api/sessions?reviewed=label").json()["sessions"]
        if {sid, other} <= {s["id"] for s in labelled if s["label"] == "MODERATE"}:
            break
        assert time.monotonic() < deadline, labelled
        time.sleep(0.2)


def test_feedback_from_the_desk_reaches_the_record(desk):
    sid = desk["ids"][QUESTIONS[0]][0]
    assert api(desk, "POST", f"/review/api/sessions/{sid}/feedback", json={"comment": "no score"}).status_code == 400
    done = api(desk, "POST", f"/review/api/sessions/{sid}/feedback", json={"score": -1, "comment": "too short"})
    assert done.status_code == 200, done.text
    deadline = time.monotonic() + 20
    while not (record := wait_for_record(desk["router"], sid))["feedback"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert record["feedback"][-1]["comment"] == "too short" and record["feedback"][-1]["source"] == "review desk"


def test_overview_counts_the_window(desk):
    listed(desk, {sid for sid, _ in desk["ids"].values()})
    figures = api(desk, "GET", "/review/api/overview?window=1h").json()
    assert figures["requests"] >= 3 and sum(figures["routes"].values()) == figures["requests"]
    assert figures["overhead_p50_ms"] is not None and figures["spend_usd"] >= 0 and figures["savings_usd"] >= 0
    assert api(desk, "GET", "/review/api/overview?window=3y").status_code == 400


def test_index_is_rebuilt_when_missing_and_follows_rotation(tmp_path):
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    for n in range(5):
        record = {"session_id": f"chatcmpl-{n}", "route_label": "SIMPLE", "user_query": f"question {n}",
                  "steps": [], "feedback": [], "synthetic": True}
        (sessions / f"2026120{n}T000000.000000Z_chatcmpl-{n}.json").write_text(json.dumps(record))
    db = index_path(sessions)
    assert db.parent == tmp_path and db.name == "sessions.index.sqlite3"  # beside, never inside
    assert sync(db, sessions, None).added == 5
    assert sync(db, sessions, None).added == 0  # incremental: nothing new, nothing read
    (sessions / "20261200T000000.000000Z_chatcmpl-0.json").unlink()  # rotation
    assert sync(db, sessions, None).removed == 1
    rows, _ = IndexReader(db).page(Filters(), 10, None)
    assert [r["session_id"] for r in rows] == [f"chatcmpl-{n}" for n in (4, 3, 2, 1)]
    db.write_bytes(b"not a database")  # damaged: rebuilt from the records
    assert sync(db, sessions, None).added == 4
    assert IndexReader(db).count() == 4


def test_overlay_edits_have_history_and_revert_and_never_touch_the_shipped_prompts(desk):
    shipped = (ROOT / "prompts" / "routing" / "system.md").read_text()
    with pytest.raises(ShippedPromptsError):
        PromptOverlay(ROOT / "prompts")
    overlay = PromptOverlay(desk["tmp"] / "prompts")
    version = chat_record(desk)["prompt_version"]
    first = overlay.write("routing/system", shipped + "\nAn operator's line.\n", "test edit")
    change = overlay.write("routing/request", overlay.text("routing/request") + "\nMore.\n", "second edit")
    # Written behind the router's back (as `evals.review --apply` does): it reads them within seconds.
    deadline = time.monotonic() + 20
    while chat_record(desk)["prompt_version"] == version:
        assert time.monotonic() < deadline, "the router did not read the operator's prompts"
        time.sleep(0.5)
    state = api(desk, "GET", "/review/api/prompts").json()
    assert state["edited"] == ["routing/request", "routing/system"] and state["history"][0]["id"] == change["id"]
    reverted = api(desk, "POST", "/review/api/prompts/revert", json={"id": change["id"]})
    assert reverted.status_code == 200 and reverted.json()["reverts"] == change["id"]
    assert overlay.edited() == ["routing/system"]
    # The router read its prompts again: the first edit is in force, so its prompt version moved.
    assert chat_record(desk)["prompt_version"] != version
    assert api(desk, "POST", "/review/api/prompts/revert", json={"id": change["id"]}).status_code == 404
    assert api(desk, "POST", "/review/api/prompts/revert", json={}).json()["reverts"] == first["id"]
    assert overlay.edited() == [] and chat_record(desk)["prompt_version"] == version
    assert (ROOT / "prompts" / "routing" / "system.md").read_text() == shipped


def test_desk_pages_render_for_the_admin(desk):
    sid = desk["ids"][QUESTIONS[1]][0]
    listed(desk, {sid})
    for path, needle in (("/review", "Route shares"), ("/review/sessions", sid), (f"/review/sessions/{sid}", "sqrt(2)"),
                         ("/review/evals", "Start an eval"), ("/review/prompts", "Propose a prompt edit")):
        page = api(desk, "GET", path)
        assert page.status_code == 200 and needle in page.text, path
        assert not re.search(r'(src|href|action)="(https?:)?//', page.text), path  # nothing from elsewhere
        assert "Content-Security-Policy" in page.headers


def test_eval_report_puts_the_title_first_and_keeps_cost_and_latency_axes_at_zero_or_above(monkeypatch):
    figures = []
    monkeypatch.setattr(report, "_svg", lambda figure: figures.append(figure) or "<svg></svg>")
    report.plot_cost({"by_route": {"SIMPLE": {"runs": 3, "usd": 0.0}, "MODERATE": {"runs": 2, "usd": 0.0}},
                      "cloud_share": 0.0, "usd": 0.0})
    report.plot_latency([{"route": "SIMPLE", "total_ms": 5.0}, {"route": "SIMPLE", "total_ms": 5.0}])
    cost_runs, cost_usd = figures[0].axes
    assert cost_runs.get_ylim()[0] == 0 and cost_usd.get_ylim()[0] == 0 and cost_usd.get_ylim()[1] > 0
    assert figures[1].axes[0].get_ylim()[0] == 0
    page = report.html_page({"confusion": {}, "timeline": [], "cost": {}, "cascade": None},
                            "# Eval report — x\n\nsummary\n\n## Metrics\n\ntext", [])
    assert page.index("<h1") < page.index("<h2") and "<figure" not in page.split("<h1")[0]


def test_the_desk_follows_the_stats_rule_without_an_admin_key(router, sim, tmp_path):
    # No key at all (the workstation default): open, like every endpoint; the login page sends you in.
    assert httpx.get(f"{router.url}/review/api/sessions", timeout=30).status_code == 200
    assert httpx.get(f"{router.url}/review/login", timeout=30).headers["location"] == "/review"
    # Client keys but no admin key: any client key opens the desk, as it opens /stats.
    keyed = start_router(sim_env(sim, ROUTER_API_KEYS=CLIENT), tmp_path)
    try:
        for path in ("/stats", "/review/api/sessions"):
            assert httpx.get(f"{keyed.url}{path}", timeout=30).status_code == 401
            assert httpx.get(f"{keyed.url}{path}", headers={"x-api-key": CLIENT}, timeout=30).status_code == 200
        assert httpx.get(f"{keyed.url}/review/login", timeout=30).status_code == 200
    finally:
        stop_router(keyed)


def test_the_admin_key_works_as_x_api_key_too(desk):
    answer = httpx.get(f"{desk['router'].url}/review/api/sessions", headers={"x-api-key": ADMIN}, timeout=30)
    assert answer.status_code == 200 and "sessions" in answer.json()


def test_an_eval_of_the_labelled_sessions_runs_as_a_job_and_lists_its_run(desk):
    sid = desk["ids"][QUESTIONS[1]][0]
    assert api(desk, "POST", f"/review/api/sessions/{sid}/label", json={"route": "COMPLEX"}).status_code == 200
    assert api(desk, "POST", "/review/api/evals", json={"dataset": "everything"}).status_code == 400
    started = api(desk, "POST", "/review/api/evals", json={"dataset": "labelled"})
    assert started.status_code == 202 and started.json()["status"] in ("queued", "running")
    job_id = started.json()["id"]
    deadline = time.monotonic() + 180
    while (job := api(desk, "GET", f"/review/api/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["status"] == "done", job["log_tail"]
    assert job["total"] >= 1 and job["replayed"] == job["total"]  # progress counted from results.jsonl
    assert job["link"].endswith("/report")
    runs = api(desk, "GET", "/review/api/evals").json()["runs"]
    run = next(r for r in runs if job["link"] == f"/review/evals/{r['run']}/report")
    assert run["accuracy"] is not None and run["examples"] == job["total"]
    report = api(desk, "GET", job["link"])
    assert report.status_code == 200 and report.text.index("<h1") < report.text.index("<figure")
    assert api(desk, "GET", job["link"], key=CLIENT).status_code == 403


def test_guessing_the_admin_key_at_the_login_form_is_throttled(desk):
    # Last in this module: it leaves 127.0.0.1 throttled at this router's login form for a minute.
    with httpx.Client(base_url=desk["router"].url, timeout=30) as browser:
        browser.get("/review/login")
        token = browser.cookies["ai_router_desk_csrf"]
        codes = [browser.post("/review/login", data={"key": f"guess-{n}", "csrf": token}).status_code
                 for n in range(11)]
        first = codes.index(429)  # ten wrong keys a minute (one came from an earlier test here)
        assert first >= 9 and set(codes[:first]) == {401} and set(codes[first:]) == {429}
        assert browser.post("/review/login", data={"key": ADMIN, "csrf": token}).status_code == 429
    assert api(desk, "GET", "/review/api/reviews").json() == {"reviews": [], "jobs": []}  # a key still works
