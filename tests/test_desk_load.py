"""The review desk stays fast with many records: `scripts/desk_load.py` on 5,000 synthetic ones.

The README's figures come from the same script on 100,000 records (`python scripts/desk_load.py`);
here a smaller folder keeps the suite quick while checking the same p95 target.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_list_and_detail_p95_under_200_ms_with_5000_records(tmp_path):
    done = subprocess.run([sys.executable, "scripts/desk_load.py", "--records", "5000", "--rounds", "40", "--check",
                           "--dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["records"] == 5000 and report["index_build_s"] > 0
    assert {"list", "list route", "list text search", "detail (JSON)", "detail (page)"} <= set(report["timings"])
    assert report["worst_p95_ms"] <= 200, report["timings"]
    assert len(list((tmp_path / "sessions").glob("*.json"))) == 5000  # the router's start rotated nothing away
