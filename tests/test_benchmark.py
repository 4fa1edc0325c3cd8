"""The benchmark script runs end to end and writes complete results (no timing assertions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.operator_logs import digest, prefill

sys.path.insert(0, str(ROOT / "scripts"))
import benchmark  # noqa: E402  (the script, imported for its scenario list)


def test_quick_benchmark_writes_every_scenario(tmp_path: Path) -> None:
    """`--quick` writes JSON and Markdown with every scenario, every figure, and no errors.

    The operator's log folder (here a pre-filled one that the environment points the router
    at, as an operator's `.env` would) is left byte-for-byte unchanged; `--check` fails exactly
    when a target does not hold.
    """
    operator = tmp_path / "operator-logs"
    before = prefill(operator)
    env = {**os.environ, "SESSION_LOG_DIR": str(operator / "sessions"), "TRACE_LOG_DIR": str(operator / "traces"),
           "EVAL_LABELS_FILE": str(operator / "labels.json")}
    result = subprocess.run(
        [sys.executable, "scripts/benchmark.py", "--quick", "--check", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, env=env,
    )
    assert digest(operator) == before, "the benchmark wrote into the operator's logs"
    data = json.loads((tmp_path / "quick.json").read_text())
    missed = [t["target"] for t in data["targets"] if not t["holds"]]
    assert result.returncode == (1 if missed else 0), result.stdout + result.stderr
    assert ("--check:" in result.stderr) == bool(missed)
    # Its own records are kept in the run's folder, marked synthetic (never a dataset or a label).
    records = [json.loads(p.read_text()) for p in Path(data["logs"]).glob("sessions-*/*.json")]
    assert records and all(r["synthetic"] for r in records)
    expected = {scenario.key for scenario in benchmark.matrix()}
    assert set(data["scenarios"]) == expected
    assert len(expected) == 24  # {instant, realistic} x {forced, classify} x {non-stream, stream} x {1, 16, 64}
    for key, cell in data["scenarios"].items():
        assert cell["errors"] == 0, (key, cell["direct"]["error_samples"], cell["router"]["error_samples"])
        for side in ("direct", "router"):
            assert cell[side]["requests"] > 0 and cell[side]["rps"] > 0, key
        assert cell["added_p50_ms"] is not None and cell["throughput_ratio"] > 0, key
        assert cell["router_cpu_ms_per_request"] >= 0, key
        if cell["scenario"]["stream"]:
            assert cell["added_ttft_p50_ms"] is not None, key
            # Every chunk the backend sent reached the client through the router.
            assert cell["router"]["chunks_p50"] == cell["direct"]["chunks_p50"], key
    assert data["router_memory"]["idle_mb"] > 0 and data["router_memory"]["peak_mb"] >= data["router_memory"]["idle_mb"]
    assert {t["target"] for t in data["targets"]} >= {"no errors in any scenario"}
    table = (tmp_path / "quick.md").read_text()
    assert all(f"| {key} |" in table for key in expected)
    assert "## Targets" in table and "Machine:" in table
    assert "wrote" in result.stdout and "[" in result.stderr  # summary printed, progress shown
