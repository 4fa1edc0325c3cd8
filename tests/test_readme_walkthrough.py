"""The README's worked example, run as written against the simulator (issue #19).

The test reads the "Worked example on the simulator" block from README.md and runs its
commands (the curl loop and the feedback call through bash, the `python -m` commands with this
interpreter, `make review` as `python -m evals.review`, which is what the Makefile runs),
then checks every output line the README promises (`#   ...` under a command; `...` stands
for anything, `<...>` for one word). Only `make run` itself is replaced, by a router started
the same way.

The router runs as `make run` starts it (local classifier on, decision cache on), with its
records in a temporary folder; the commands run in a temporary working directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, sim_env, start_router, stop_router, wait_for_record

SKIPPED = ("make run",)
# What the Makefile runs for each `make` line of the block (tests/test_makefile.py checks the targets).
MAKE = {
    "make review REVIEW_ARGS=--apply": "python -m evals.review --apply",
    "make eval EVAL_ARGS=--gate": "python -m evals.run --gate",
    "make review": "python -m evals.review",
}


def _block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Worked example on the simulator"):]
    body = section[section.index("```bash\n") + len("```bash\n"):]
    return body[: body.index("```")].splitlines()


def _commands(lines: list[str]) -> list[tuple[str, list[str]]]:
    """(command, the output lines promised under it), joining continuation lines and the loop."""
    commands: list[tuple[str, list[str]]] = []
    pending = ""
    in_loop = False
    for line in lines:
        if line.startswith("#   "):
            commands[-1][1].append(line[4:])
            continue
        if line.startswith("#") or not line.strip():
            continue
        pending += line + "\n"
        in_loop = in_loop or line.startswith("for ")
        if line.rstrip().endswith("\\") or (in_loop and line.strip() != "done"):
            continue
        commands.append((pending.strip(), []))
        pending, in_loop = "", False
    return commands


def _pattern(promised: str) -> str:
    parts = re.split(r"(\.\.\.|<[^>]+>)", promised)
    return "".join(".*" if p == "..." else r"\S+" if p.startswith("<") else re.escape(p) for p in parts)


@pytest.fixture()
def walkthrough_router(sim, tmp_path):
    env = sim_env(sim, PROMPTS_DIR=str(tmp_path / "operator-prompts"))
    for knob in ("LOCAL_CLASSIFIER", "ROUTE_CACHE_SIZE"):  # as `make run` has them
        env.pop(knob)
    (tmp_path / "router").mkdir()
    server = start_router(env, tmp_path / "router")
    yield server
    stop_router(server)


def test_readme_worked_example_runs_as_written(walkthrough_router, sim_reset, tmp_path):
    router = walkthrough_router
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PRIMARY_", "CLASSIFIER_", "XAI_", "LANGSMITH_", "LOCAL_CLASSIFIER", "SIMULATOR"))}
    # The block runs from the repository root; here the working directory is a temporary one
    # (its logs/ must not be the operator's), so the two relative paths that matter are given:
    # the local classifier's model, and the operator's prompt folder (logs/prompts by default),
    # shared with the router as `make run` and `make review` share it.
    overlay = tmp_path / "operator-prompts"
    env.update(LOCAL_CLASSIFIER_MODEL_PATH=str(ROOT / "models" / "router_classifier" / "model.json"),
               PROMPTS_DIR=str(overlay))
    shipped = {p: p.read_bytes() for p in sorted((ROOT / "prompts").rglob("*.md"))}
    status_before = _git_status()
    env.update(PYTHONPATH=str(ROOT), LANGSMITH_TRACING="false", SIM_TOKEN_DELAY_MS="0",
               SESSION_LOG_DIR=str(router.session_dir), TRACE_LOG_DIR=str(router.trace_dir),
               EVAL_LABELS_FILE=str(work / "logs" / "labels.json"))
    host = router.url.removeprefix("http://")
    ids: dict[str, str] = {}
    commands = _commands(_block())
    ran = []
    for command, promised in commands:
        if command.startswith(SKIPPED):
            continue
        script = command.replace("localhost:8000", host)
        for name, sid in ids.items():
            script = script.replace(f"chatcmpl-<{name} id>", sid)
        assert "<" not in script.split("#")[0] or "<<" in script, f"unfilled placeholder in {script!r}"
        script = MAKE.get(script, script)
        script = re.sub(r"^python ", f"{sys.executable} ", script, flags=re.M)
        result = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                                timeout=240)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        out = result.stdout
        ran.append(command.split()[0:3])
        if command.startswith("for q in"):
            questions = re.findall(r'"([^"]+)"', command.split("; do")[0])
            routes = re.findall(r"x-ai-router-route: (\S+)", out, flags=re.I)
            sessions = re.findall(r"x-session-id: (\S+)", out, flags=re.I)
            assert len(routes) == len(sessions) == len(questions) == 5, out
            promised_routes = re.findall(r"\b[A-Z]{4,}\b", promised[0])
            assert routes == promised_routes, (questions, routes)
            ids["hello"] = sessions[questions.index("hello")]
            louvre = next(q for q in questions if "Louvre" in q)
            ids["Louvre"] = sessions[questions.index(louvre)]
            for sid in sessions:  # written off the request path: a person never outruns the writer, a test may
                wait_for_record(router, sid)
            continue
        if command.startswith("python -m tools.sessions list"):
            said = re.search(r"went (\w+)", command).group(1)  # "# the Louvre question went SIMPLE"
            line = next((row for row in out.splitlines() if "Louvre" in row), "")
            assert f" {said} " in line, (out, result.stderr)
        for line in promised:
            assert re.search(_pattern(line), out), (command, line, out, result.stderr)
    assert len(ran) == 9, ran  # the loop, list, feedback, label, dataset, eval, review, review --apply, gate
    # `--apply` kept its edit in the operator's folder, with its history; the checkout is untouched.
    assert "Louvre" in (overlay / "routing" / "system.md").read_text() and (overlay / ".history.jsonl").is_file()
    assert {p: p.read_bytes() for p in sorted((ROOT / "prompts").rglob("*.md"))} == shipped
    assert _git_status() == status_before


def _git_status() -> str | None:
    """`git status --porcelain` of the checkout (None when it is not a git checkout)."""
    done = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else None
