"""The test suite keeps out of the operator's logs (issue #19).

`tests/conftest.py` points `SESSION_LOG_DIR`, `TRACE_LOG_DIR` and `EVAL_LABELS_FILE` at a
temporary folder for the whole run (every router, CLI and eval the suite starts inherits it),
and fails the run when the digest of `logs/` differs at the end from the start. The benchmark's
own check is in `tests/test_benchmark.py` (a pre-filled folder, byte for byte).
"""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from tests.conftest import ROOT
from tests.operator_logs import digest, prefill


def _outside_logs(path: str) -> bool:
    return not Path(path).resolve().is_relative_to((ROOT / "logs").resolve())


def test_everything_the_suite_starts_writes_outside_the_operators_logs():
    settings = Settings()
    assert _outside_logs(settings.session_log_dir) and _outside_logs(settings.trace_log_dir)
    assert _outside_logs(Settings().eval_labels_file)
    assert _outside_logs(settings.prompts_dir)  # the operator's prompt overlay
    assert _outside_logs(settings.review_desk_work_dir)  # the review desk's jobs


def test_the_guard_sees_a_single_changed_byte(tmp_path):
    before = prefill(tmp_path / "logs")
    assert digest(tmp_path / "logs") == before
    record = next((tmp_path / "logs" / "sessions").glob("*.json"))
    record.write_bytes(record.read_bytes().replace(b"real", b"reel"))
    assert digest(tmp_path / "logs") != before
