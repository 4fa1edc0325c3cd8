"""Time the review desk's list and detail with many session records (synthetic ones).

    python scripts/desk_load.py                  # 100,000 records (about 2 min to write, index and measure)
    python scripts/desk_load.py --records 10000 --check   # exit 1 when a p95 is over --target-ms

Writes N records shaped like the router's (routes, backends, client keys, local predictions,
errors, fallbacks, feedback, steps), each marked `"synthetic": true` as the router marks test
traffic, into a temporary session folder; builds the desk's SQLite index with the same child
program the desk runs (`python -m core.http.desk.index`), timed; starts the real router
(`uvicorn server:app`, no backend needed) on that folder with an admin key; then times, over
HTTP on loopback, the sessions list (no filter, each filter, text search, a page deep in the
cursor) and session details, and prints p50/p95 per kind as JSON. The times include the
HTTP round trip, so they are an upper bound on the server's own time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "desk-load-admin-key"
ROUTES = ["SIMPLE", "MODERATE", "COMPLEX", "ENRICH", "META", "VISION"]
BACKEND = {"SIMPLE": "primary", "MODERATE": "primary", "META": "primary", "COMPLEX": "xai", "ENRICH": "xai",
           "VISION": "xai"}
WORDS = ("router louvre python function sqrt irrational weather price capital france translate summary "
         "kubernetes tokenizer garden recipe history battery invoice poem title tags").split()


def record(index: int, started: float, rng: random.Random) -> tuple[str, dict]:
    """One synthetic record (and its file name), as the session writer would write it."""
    route = rng.choices(ROUTES, weights=[30, 35, 10, 10, 12, 3])[0]
    session_id = f"chatcmpl-load{index:08d}{rng.getrandbits(32):08x}"
    query = " ".join(rng.choices(WORDS, k=rng.randint(3, 14))) + f" #{index}"
    failed = rng.random() < 0.03
    local = None if route in ("META", "VISION") else {
        "label": route if rng.random() < 0.85 else rng.choice(ROUTES[:4]), "probability": round(rng.random(), 3),
        "threshold": 0.8, "model_version": "load", "decided": False, "ms": 0.3, "note": "shadow mode"}
    step = {"node": "generate", "provider": BACKEND[route], "url": "http://127.0.0.1:1/v1/chat/completions",
            "model": "sim-primary", "served_model": "sim-primary",
            "messages_sent": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": query}],
            "response_content": "An answer. " * rng.randint(5, 40), "reasoning_content": None,
            "usage": {"prompt_tokens": 40, "completion_tokens": 90}, "duration_ms": rng.uniform(50, 900),
            "status": "ok", "error": None, "started_at": started}
    steps = ([{**step, "status": "error", "error": "timeout"}] if failed else []) + [step]
    name = f"{datetime.fromtimestamp(started, UTC).strftime('%Y%m%dT%H%M%S.%fZ')}_{session_id}.json"
    return name, {
        "schema_version": 1, "session_id": session_id,
        "timestamp": datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds"),
        "endpoint": "chat.completions", "dry_run": False, "stream": rng.random() < 0.5, "user_query": query,
        "user_query_chars": len(query), "message_count": 1, "route": BACKEND[route], "route_label": route,
        "route_reason": "classifier", "backend": BACKEND[route], "served_model": "sim-primary", "degraded": None,
        "classification_raw": route, "classification_ms": rng.uniform(5, 150), "local_classification": local,
        "enrichment": None, "citations": [], "steps": steps, "total_ms": rng.uniform(60, 1500), "ttft_ms": None,
        "status_code": 500 if rng.random() < 0.01 else 200, "error": "upstream failed" if rng.random() < 0.01 else None,
        "client": {"user_agent": "desk-load", "task": None, "key": f"key-{rng.randint(0, 7):08x}"},
        "synthetic": True, "overhead_ms": rng.uniform(1, 6),
        "usage": {"prompt_tokens": 40, "completion_tokens": 90, "estimated": False,
                  "cost_usd": 0.0001 if BACKEND[route] == "xai" else 0.0, "xai_cost_usd": 0.0,
                  "all_xai_cost_usd": 0.0001},
        "params": {}, "prompt_version": "load", "trace_id": None, "content_mode": "full",
        "feedback": [{"score": 1, "comment": None, "received_at": "x"}] if rng.random() < 0.02 else [],
    }


def write_records(folder: Path, count: int, seed: int = 7) -> list[str]:
    """Write `count` records, the newest now, one every ~6 s back in time; return their session ids."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    ids = []
    for index in range(count):
        name, data = record(index, now - (count - index) * 6.0, rng)
        (folder / name).write_text(json.dumps(data))
        ids.append(data["session_id"])
    return ids


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 and p95 in ms."""
    ordered = sorted(values)
    return {"p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1), "n": len(ordered)}


def measure(base: str, ids: list[str], rounds: int, rng: random.Random) -> dict[str, dict[str, float]]:
    """Time each kind of request `rounds` times."""
    queries = {
        "list": "", "list route": "route=COMPLEX", "list backend": "backend=xai", "list 1h": "window=1h",
        "list labelled or feedback": "reviewed=either", "list errors/fallbacks": "problems=1",
        "list local != decision": "disagree=1", "list client": "client=key-00000003",
        "list text search": "q=louvre%20python",
    }
    out: dict[str, dict[str, float]] = {}
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        deep = None
        cursor = None
        for _ in range(20):  # a page 20 pages deep, for the cursor case
            cursor = client.get("/review/api/sessions", params={"limit": 50, **({"cursor": cursor} if cursor else {})}
                                ).json()["next"]
        deep = cursor
        queries["list page 21 (cursor)"] = f"cursor={deep}"
        for kind, query in queries.items():
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                answer = client.get(f"/review/api/sessions?limit=50&{query}")
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, answer.text
            out[kind] = percentiles(times)
        for kind, path in (("detail (JSON)", "/review/api/sessions/{}"), ("detail (page)", "/review/sessions/{}")):
            times = []
            for _ in range(rounds):
                sid = rng.choice(ids)
                started = time.perf_counter()
                answer = client.get(path.format(sid))
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, answer.text
            out[kind] = percentiles(times)
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            assert client.get("/review/sessions?route=ENRICH").status_code == 200
            times.append((time.perf_counter() - started) * 1000)
        out["list (page)"] = percentiles(times)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the measurement."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=100, help="requests per kind")
    parser.add_argument("--target-ms", type=float, default=200.0)
    parser.add_argument("--check", action="store_true", help="exit 1 when a p95 is over --target-ms")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one, removed after)")
    args = parser.parse_args(argv)
    work = args.dir or Path(tempfile.mkdtemp(prefix="desk-load-"))
    sessions = work / "sessions"
    started = time.perf_counter()
    ids = write_records(sessions, args.records)
    wrote_s = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "core.http.desk.index", str(sessions), "--labels",
                    str(work / "labels.json")], cwd=ROOT, check=True, capture_output=True)
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "core.http.desk.index", str(sessions), "--labels",
                    str(work / "labels.json")], cwd=ROOT, check=True, capture_output=True)
    resync_s = time.perf_counter() - started
    port = free_port()
    env = {**os.environ, "ADMIN_API_KEY": ADMIN, "SESSION_LOG_DIR": str(sessions),
           "TRACE_LOG_DIR": str(work / "traces"), "SESSION_LOG_MAX_FILES": str(args.records * 2),
           "SESSION_LOG_MAX_AGE_DAYS": "3650", "EVAL_LABELS_FILE": str(work / "labels.json"),
           "PROMPTS_DIR": str(work / "prompts"), "REVIEW_DESK_WORK_DIR": str(work / "desk"),
           "PRIMARY_BASE_URL": "http://127.0.0.1:9/v1", "LANGSMITH_TRACING": "false", "LOCAL_CLASSIFIER": "off"}
    log = (work / "router.log").open("w")
    router = subprocess.Popen([sys.executable, "-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--port",
                               str(port), "--log-level", "warning"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/review/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or router.poll() is not None:
                raise SystemExit(f"the router did not start; see {work / 'router.log'}")
            time.sleep(0.2)
        timings = measure(base, ids, args.rounds, random.Random(11))
    finally:
        router.terminate()
        router.wait(timeout=30)
    worst = max(t["p95_ms"] for t in timings.values())
    report = {
        "records": args.records, "machine": f"{os.cpu_count()} cores", "written_s": round(wrote_s, 1),
        "index_build_s": round(index_s, 1), "index_resync_unchanged_s": round(resync_s, 2),
        "index_mb": round((sessions.parent / "sessions.index.sqlite3").stat().st_size / 1e6, 1),
        "timings": timings, "worst_p95_ms": worst, "target_ms": args.target_ms,
    }
    print(json.dumps(report, indent=2))  # noqa: T201
    if args.dir is None:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return 1 if args.check and worst > args.target_ms else 0


if __name__ == "__main__":
    sys.exit(main())
