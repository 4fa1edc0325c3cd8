"""Every reader of the logs survives rotation and writing racing it (issue #19).

A running router removes old records and traces (rotation) at any moment, so a file listed a
moment ago may be gone when it is read, and a trace may be half written. The readers (the
sessions CLI, `evals.build_dataset` and through it `evals.review`, `evals.label`,
`evals.train`) must skip such files, not fail with FileNotFoundError.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.sessions import reading
from core.sessions.reading import records
from core.sessions.record import SessionData, build_record, utc_stamp
from evals import label as label_cli
from evals.build_dataset import build_examples
from evals.train import load_sessions
from tests.conftest import ROOT
from tools import sessions as sessions_cli

GONE = "chatcmpl-" + "f" * 32


def _write(folder: Path, traces: Path, n: int, *, synthetic: bool = False, started: float | None = None) -> str:
    started = started or time.time() - 60 + n
    sid = f"chatcmpl-{n:08x}{0:024x}"
    state = {"route": "MODERATE", "path": "primary", "backend": "primary",
             "route_reason": "classifier: MODERATE", "steps": []}
    data = SessionData(session_id=sid, started_at=started, endpoint="chat.completions", user_agent="test",
                       body={"messages": [{"role": "user", "content": f"question number {n} about sorting"}]},
                       state=state, total_ms=5.0, status_code=200, error=None, synthetic=synthetic)
    record = build_record(data, tz="UTC", mode="full", limit=2000)
    name = f"{utc_stamp(started)}_{sid}"
    (folder / f"{name}.json").write_text(json.dumps(record))
    (traces / f"{name}.jsonl").write_text(json.dumps({"parent_run_id": None, "inputs": {
        "messages": [{"role": "user", "content": f"question number {n} about sorting"}]}}) + "\n")
    return sid


@pytest.fixture()
def logs(tmp_path: Path) -> tuple[Path, Path]:
    folder, traces = tmp_path / "sessions", tmp_path / "traces"
    folder.mkdir()
    traces.mkdir()
    for n in range(4):
        _write(folder, traces, n)
    return folder, traces


@pytest.fixture()
def rotated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every listing also names a record and a trace that rotation removed right after it was listed."""
    original = Path.glob

    def glob(self: Path, pattern: str):
        found = list(original(self, pattern))
        stamp = "20200101T000000.000000Z"
        if pattern.endswith(".json") or pattern.endswith(".json*"):
            found.append(self / f"{stamp}_{GONE}.json")
        if pattern.endswith(".jsonl"):
            found.append(self / f"{stamp}_{GONE}.jsonl")
        return found

    monkeypatch.setattr(Path, "glob", glob)


def test_readers_skip_files_removed_between_listing_and_reading(logs, rotated, capsys):
    folder, traces = logs
    assert len(list(records(folder, since=time.time() - 3600))) == 4
    assert sessions_cli.main(["--dir", str(folder), "list", "--since", "1d"]) == 0
    assert capsys.readouterr().out.count("chatcmpl-") == 4
    assert sessions_cli.main(["--dir", str(folder), "show", GONE]) == 1  # gone: said so, no traceback
    filters = argparse.Namespace(since=time.time() - 3600, until=time.time() + 60)
    examples, _ = build_examples(folder, trace_dir=traces, filters=filters, dedup=False)
    assert len(examples) == 4  # what evals.build_dataset and evals.review read
    assert len(load_sessions(folder, traces, None, 2000)) == 4  # what evals.train reads
    chosen = list(reading.iter_records(folder, argparse.Namespace(
        since=None, route=None, label=None, errors=False, client=None)))
    assert len(chosen) == 4  # what evals.label walks


def test_readers_survive_a_live_rotation_race(logs):
    """A writer keeps adding records and a rotator keeps removing them while the readers run."""
    folder, traces = logs
    stop = threading.Event()

    def churn() -> None:
        n = 100
        while not stop.is_set():
            _write(folder, traces, n)
            for path in sorted(folder.glob("*.json"))[:-3] + sorted(traces.glob("*.jsonl"))[:-3]:
                path.unlink(missing_ok=True)
            n += 1

    writer = threading.Thread(target=churn, daemon=True)
    writer.start()
    try:
        for _ in range(30):
            list(records(folder))
            build_examples(folder, trace_dir=traces, dedup=False)
            load_sessions(folder, traces, None, 2000)
    finally:
        stop.set()
        writer.join(timeout=5)


def test_synthetic_records_never_become_datasets_labels_or_training(tmp_path):
    folder, traces = tmp_path / "sessions", tmp_path / "traces"
    folder.mkdir()
    traces.mkdir()
    _write(folder, traces, 1)
    _write(folder, traces, 2, synthetic=True)
    examples, skipped = build_examples(folder, trace_dir=traces, dedup=False)
    assert len(examples) == 1 and skipped == {"synthetic (a test or benchmark)": 1}
    assert len(load_sessions(folder, traces, None, 2000)) == 1


def test_label_set_takes_only_ids_of_real_sessions(tmp_path, capsys):
    folder, traces = tmp_path / "sessions", tmp_path / "traces"
    folder.mkdir()
    traces.mkdir()
    sid = _write(folder, traces, 7)
    _write(folder, traces, 8)
    labels = tmp_path / "labels.json"
    base = ["--file", str(labels), "--dir", str(folder), "set"]
    assert label_cli.main([*base, "chatcmpl-" + "a" * 32, "--route", "SIMPLE"]) == 2
    assert "No session" in capsys.readouterr().err and not labels.exists()
    assert label_cli.main([*base, "chatcmpl-000000", "--route", "SIMPLE"]) == 2  # two sessions match
    assert "matches 2 sessions" in capsys.readouterr().err
    assert label_cli.main([*base, sid[:20], "--route", "SIMPLE"]) == 0  # a unique prefix (older listings printed 20 characters)
    assert json.loads(labels.read_text())[sid]["expected_route"] == "SIMPLE"


def test_sessions_list_into_a_closed_pipe_ends_quietly(logs):
    folder, _ = logs
    for n in range(10, 400):
        _write(folder, folder.parent / "traces", n)
    lister = subprocess.Popen([sys.executable, "-m", "tools.sessions", "--dir", str(folder), "list", "--limit", "400"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-n", "1"], stdin=lister.stdout, capture_output=True, timeout=30)
    lister.stdout.close()
    err = lister.stderr.read().decode()
    assert lister.wait(timeout=30) == 0 and "Traceback" not in err, err
    assert head.stdout.count(b"chatcmpl-") == 1


def test_feedback_scores_map_onto_the_rating_scale():
    from evals.build_dataset import feedback_rating

    # Thumbs: -1 is bad, 1 is good (never "a rating of 1"); 0-10 maps onto 1-5.
    assert (feedback_rating(-1), feedback_rating(1)) == (1.0, 5.0)
    assert (feedback_rating(0), feedback_rating(5), feedback_rating(10)) == (1.0, 3.0, 5.0)
