"""`WORKERS=2`: both workers serve, and `/stats` and `/metrics` count every request."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.mmap_dict import MmapedDict

from tests.conftest import ROOT, free_port, sim_env, wait_until_serving


def _served_by_pid(metrics_dir: Path) -> dict[str, float]:
    """Requests each worker counted in its own metric file (`counter_<pid>.db`)."""
    served: dict[str, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))
        served[path.stem] = sum(v for key, v, *_ in values if '"ai_router_requests_total"' in key)
    return served


def test_stats_add_up_across_two_workers(sim_reset, tmp_path: Path) -> None:
    """Requests spread over two worker processes all show up in `/stats`, whoever answers."""
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRIMARY_", "CLASSIFIER_", "XAI_"))}
    env.update(sim_env(sim_reset), HOST="127.0.0.1", PORT=str(port), WORKERS="2",
               PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), LANGSMITH_TRACING="false")
    log = (tmp_path / "router.log").open("w")
    process = subprocess.Popen([sys.executable, "server.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    body = {"model": "ai-router", "route": "SIMPLE", "messages": [{"role": "user", "content": "hi"}]}
    try:
        wait_until_serving(process, f"{url}/v1/models", tmp_path / "router.log", timeout=60)
        sent = 0

        def one(_: int) -> int:
            with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
                return client.post(f"{url}/api/route", json=body).status_code

        # Concurrent fresh connections until both workers have served some: while one worker is
        # busy the other accepts (sequential requests on a loaded machine can all land on one).
        # Bounded, so a lopsided run fails instead of hanging.
        for _round in range(30):
            with ThreadPoolExecutor(max_workers=8) as pool:
                statuses = list(pool.map(one, range(8)))
            assert statuses == [200] * 8
            sent += len(statuses)
            served = _served_by_pid(metrics_dir)
            if sum(1 for n in served.values() if n > 0) >= 2:
                break
        served = _served_by_pid(metrics_dir)
        assert sum(1 for n in served.values() if n > 0) == 2, served
        assert sum(served.values()) == sent
        bad = httpx.post(f"{url}/v1/chat/completions", json={"messages": "not a list"})
        assert bad.status_code == 400
        for _ in range(6):  # several reads, fresh connections: whichever worker answers agrees
            stats = httpx.get(f"{url}/stats", headers={"Connection": "close"}).json()
            assert stats["requests"] == sent + 1 and stats["routes"]["SIMPLE"]["count"] == sent
            assert stats["errors"] == 0 and stats["workers_shared"] is True
            assert stats["client_errors"] == 1 and stats["routes"]["UNROUTED"]["client_errors"] == 1
            assert stats["routes"]["SIMPLE"]["latency_ms"]["n"] == sent
        metrics = httpx.get(f"{url}/metrics").text
        assert f'ai_router_requests_total{{error="false",route="SIMPLE",streamed="false"}} {float(sent)}' in metrics
    finally:
        process.terminate()
        process.wait(timeout=20)
