"""Measure what the router adds on top of its backend: latency, TTFT, throughput, CPU, memory.

Run from the repository root:

    python scripts/benchmark.py            # full run, a few minutes
    python scripts/benchmark.py --quick    # smoke run (scaled-down workload), ~20 s

It starts the backend simulator and the router as separate processes (the router through
`python server.py`, the production launcher), then runs the same workload directly
against the simulator (A) and through the router (B), alternating segments A B B A in
one run so every figure is a ratio taken on the same machine at the same time. The load
generator is this process (aiohttp on uvloop: httpx's client costs several times more CPU
per request at concurrency 64 and became the bottleneck); it runs the same client code
for both sides, so its own cost cancels out of the differences.

Results go to a new folder `benchmarks/runs/<time>/` (untracked), or `--out`; `--save` writes
them over the published `benchmarks/results/` instead: `results.json`, `results.md` and, in a
full run, `profile.svg` (py-spy flame graph of the router on the instant non-streaming
workload). `--check` exits 1 when a target does not hold. No test asserts on these timings:
the benchmark reports, the tests assert behaviour.

The routers it starts write their session records and traces into the run's temporary
folder, never the operator's `logs/` (whatever `SESSION_LOG_DIR` says), and mark them
synthetic (`SYNTHETIC_TRAFFIC=true`), so its requests never become datasets or training data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
CLASSIFIER_MODEL = "sim-classifier"
PRIMARY_MODEL = "sim-primary"
PROMPT = "Explain how a hash map handles collisions."
TICKS = os.sysconf("SC_CLK_TCK")
CHILDREN: list[subprocess.Popen] = []  # stopped on exit, however the run ends
JSON_HEADERS = {"Content-Type": "application/json"}


# --- processes ----------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, what: str, timeout_s: float = 60) -> None:
    """Poll `url` until it answers 200 (bounded), or fail with the process's exit code."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a child that is still starting
    raise SystemExit(f"{what} did not answer {url} within {timeout_s} s")


def stop(process: subprocess.Popen) -> None:
    """Stop a child we started (SIGTERM, then SIGKILL after 10 s)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_simulator(log_dir: Path) -> tuple[subprocess.Popen, str]:
    """Start `python -m tools.simulator` on a free port; return it and its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.simulator", "--port", str(port), "--tokens", "12",
         "--classifier-model", CLASSIFIER_MODEL, "--classifier-answer", "MODERATE"],
        cwd=ROOT, stdout=(log_dir / "simulator.log").open("w"), stderr=subprocess.STDOUT,
    )
    CHILDREN.append(process)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/health", process, "simulator")
    return process, url


def start_router(sim_url: str, log_dir: Path, workers: int = 1,
                 extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start the router with `python server.py` (as deployed) pointed at the simulator."""
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PRIMARY_", "CLASSIFIER_", "XAI_", "LANGSMITH_", "LANGCHAIN_", "PROMETHEUS_"))}
    env.update({
        "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": str(workers),
        "PRIMARY_BASE_URL": f"{sim_url}/v1", "PRIMARY_MODEL": PRIMARY_MODEL,
        "CLASSIFIER_BASE_URL": f"{sim_url}/v1", "CLASSIFIER_MODEL": CLASSIFIER_MODEL,
        "XAI_BASE_URL": f"{sim_url}/v1", "XAI_API_KEY": "bench-placeholder",
        "LANGSMITH_TRACING": "false", "PYTHONUNBUFFERED": "1",
        # Synthetic traffic stays out of the operator's logs and out of every dataset.
        "SESSION_LOG_DIR": str(log_dir / f"sessions-{port}"), "TRACE_LOG_DIR": str(log_dir / f"traces-{port}"),
        "SYNTHETIC_TRAFFIC": "true",
        # The "classify" scenarios measure the LLM classifier path; the cascade has its own scenario.
        "LOCAL_CLASSIFIER": "off",
        **(extra_env or {}),
    })
    process = subprocess.Popen(
        [sys.executable, "server.py"], cwd=ROOT, env=env,
        stdout=(log_dir / f"router-{workers}w.log").open("w"), stderr=subprocess.STDOUT,
    )
    CHILDREN.append(process)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/v1/models", process, "router")
    if workers > 1:  # every worker must be up before we measure, not just the first
        deadline = time.monotonic() + 60
        while len(process_tree(process.pid)) < workers + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    return process, url


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (uvicorn's workers are children of its supervisor)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its descendants, from /proc/<pid>/stat."""
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICKS


def memory_mb(pid: int) -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory of `pid`, in MB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, amount = line.split(":")
            values[key] = int(amount.split()[0]) / 1024
    return {"rss_mb": round(values["VmRSS"], 1), "peak_mb": round(values["VmHWM"], 1)}


# --- load ---------------------------------------------------------------------------------

@dataclass
class Segment:
    """What one side saw in one A or B segment."""

    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    chunks: list[int] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    requests: int = 0


async def one_request(session: aiohttp.ClientSession, url: str, body: bytes, stream: bool, seg: Segment) -> None:
    """Send one request and record its latency (and, streaming, TTFT and chunk spacing)."""
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=JSON_HEADERS) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {(await response.read())[:200]!r}")
            if not stream:
                if b'"choices"' not in await response.read():
                    raise RuntimeError("answer without choices")
            else:
                arrivals: list[float] = []
                done = False
                async for line in response.content:  # one SSE line at a time, as it arrives
                    if not line.startswith(b"data:"):
                        continue
                    if line.rstrip().endswith(b"[DONE]"):
                        done = True
                        break
                    arrivals.append(time.perf_counter())
                if not done or not arrivals:
                    raise RuntimeError("stream ended without [DONE] or without chunks")
                seg.ttfts.append((arrivals[0] - started) * 1000)
                seg.chunks.append(len(arrivals))
                if len(arrivals) > 2:
                    seg.gaps.append((arrivals[-1] - arrivals[0]) * 1000 / (len(arrivals) - 1))
        seg.latencies.append((time.perf_counter() - started) * 1000)
    except (TimeoutError, aiohttp.ClientError, RuntimeError) as exc:
        seg.errors += 1
        if len(seg.error_samples) < 3:
            seg.error_samples.append(f"{type(exc).__name__}: {exc}"[:300])


async def run_segment(session: aiohttp.ClientSession, url: str, body: bytes, stream: bool,
                      requests: int, concurrency: int) -> Segment:
    """Run `requests` requests with `concurrency` in flight; time the whole segment."""
    seg = Segment(requests=requests)
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            await one_request(session, url, body, stream, seg)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seg.wall_s = time.perf_counter() - started
    return seg


def new_session() -> aiohttp.ClientSession:
    """A pooled client session; each side gets its own, configured identically."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256, limit_per_host=256),
        timeout=aiohttp.ClientTimeout(total=120),
    )


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, or None when there is nothing."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(segments: list[Segment]) -> dict[str, Any]:
    """Merge one side's segments into the figures the report shows."""
    lat = [x for s in segments for x in s.latencies]
    ttft = [x for s in segments for x in s.ttfts]
    gaps = [x for s in segments for x in s.gaps]
    ok = sum(len(s.latencies) for s in segments)
    wall = sum(s.wall_s for s in segments)
    return {
        "requests": sum(s.requests for s in segments),
        "errors": sum(s.errors for s in segments),
        "error_samples": [e for s in segments for e in s.error_samples][:3],
        "rps": round(ok / wall, 1) if wall else None,
        "p50_ms": _r(pct(lat, 0.5)), "p99_ms": _r(pct(lat, 0.99)),
        "ttft_p50_ms": _r(pct(ttft, 0.5)), "ttft_p99_ms": _r(pct(ttft, 0.99)),
        "chunk_gap_p50_ms": _r(pct(gaps, 0.5)),
        "chunks_p50": pct([float(c) for s in segments for c in s.chunks], 0.5),
    }


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 2)


# --- scenarios ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    """One cell of the matrix."""

    backend: str  # "instant" or "realistic"
    path: str  # "forced" (POST /api/route, route MODERATE) or "classify" (/v1/chat/completions)
    stream: bool
    concurrency: int

    @property
    def key(self) -> str:
        """Stable name used in the JSON and the table."""
        return f"{self.backend}/{self.path}/{'stream' if self.stream else 'nonstream'}/c{self.concurrency}"


def bodies(scenario: Scenario, max_tokens: int) -> tuple[bytes, bytes]:
    """The direct body and the router body: the same request, plus the forced route."""
    base = {"model": PRIMARY_MODEL, "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": max_tokens, "stream": scenario.stream}
    routed = {**base, "model": "ai-router"}
    if scenario.path == "forced":
        routed["route"] = "MODERATE"
    return json.dumps(base).encode(), json.dumps(routed).encode()


@dataclass
class Profile:
    """Workload sizes; `--quick` scales them down (and the realistic backend with them)."""

    cycles: int  # ABBA cycles per scenario
    instant_requests: dict[int, int]  # per segment, by concurrency
    realistic_requests: dict[int, int]
    realistic: dict[str, float]  # simulator config for the realistic backend
    scaling_requests: int


FULL = Profile(
    cycles=2,
    instant_requests={1: 150, 16: 400, 64: 800},
    realistic_requests={1: 2, 16: 16, 64: 64},
    realistic={"tokens": 100, "token_delay_ms": 10.0, "ttft_ms": 20.0},
    scaling_requests=1500,
)
QUICK = Profile(
    cycles=1,
    instant_requests={1: 20, 16: 32, 64: 64},
    realistic_requests={1: 2, 16: 16, 64: 64},
    realistic={"tokens": 10, "token_delay_ms": 5.0, "ttft_ms": 10.0},
    scaling_requests=0,
)


def sim_config_for(profile: Profile, scenario: Scenario) -> dict[str, Any]:
    """Simulator settings for a scenario.

    The simulator's non-streaming answer waits only `ttft_ms`, so the realistic
    non-streaming backend gets the whole generation time (TTFT + tokens x delay) there.
    """
    if scenario.backend == "instant":
        return {"tokens": 12, "token_delay_ms": 0.0, "ttft_ms": 0.0}
    cfg = dict(profile.realistic)
    if not scenario.stream:
        cfg = {**cfg, "ttft_ms": cfg["ttft_ms"] + cfg["tokens"] * cfg["token_delay_ms"], "token_delay_ms": 0.0}
    return cfg


async def run_scenario(
    scenario: Scenario, profile: Profile, sim_url: str, router_url: str, router_pid: int,
) -> dict[str, Any]:
    """Run one scenario ABBA-wise and return its figures."""
    sizes = profile.instant_requests if scenario.backend == "instant" else profile.realistic_requests
    requests = sizes[scenario.concurrency]
    cfg = sim_config_for(profile, scenario)
    direct_body, router_body = bodies(scenario, int(cfg["tokens"]))
    direct_url = f"{sim_url}/v1/chat/completions"
    routed_url = f"{router_url}/api/route" if scenario.path == "forced" else f"{router_url}/v1/chat/completions"
    async with new_session() as direct_client, new_session() as router_client:
        await asyncio.to_thread(httpx.post, f"{sim_url}/sim/config", json=cfg)
        # Warm both sides' connection pools up to the concurrency, so neither pays connects.
        warm = max(scenario.concurrency, 4)
        await run_segment(direct_client, direct_url, direct_body, scenario.stream, warm, scenario.concurrency)
        await run_segment(router_client, routed_url, router_body, scenario.stream, warm, scenario.concurrency)
        direct: list[Segment] = []
        routed: list[Segment] = []
        cpu = 0.0
        for _ in range(profile.cycles):
            for side in "ABBA":
                if side == "A":
                    direct.append(await run_segment(direct_client, direct_url, direct_body, scenario.stream,
                                                     requests, scenario.concurrency))
                else:
                    before = cpu_seconds(router_pid)
                    routed.append(await run_segment(router_client, routed_url, router_body, scenario.stream,
                                                    requests, scenario.concurrency))
                    cpu += cpu_seconds(router_pid) - before
    d, r = summarise(direct), summarise(routed)
    return {
        "scenario": asdict(scenario),
        "backend_config": cfg,
        "direct": d,
        "router": r,
        "added_p50_ms": _diff(d["p50_ms"], r["p50_ms"]),
        "added_p99_ms": _diff(d["p99_ms"], r["p99_ms"]),
        "added_ttft_p50_ms": _diff(d["ttft_p50_ms"], r["ttft_p50_ms"]),
        "added_ttft_p99_ms": _diff(d["ttft_p99_ms"], r["ttft_p99_ms"]),
        "throughput_ratio": round(r["rps"] / d["rps"], 3) if r["rps"] and d["rps"] else None,
        "router_cpu_ms_per_request": round(cpu * 1000 / max(1, r["requests"]), 3),
        "errors": d["errors"] + r["errors"],
    }


def matrix() -> list[Scenario]:
    """Every scenario, instant backend first (overhead dominates there)."""
    return [
        Scenario(backend, path, stream, concurrency)
        for backend in ("instant", "realistic")
        for path in ("forced", "classify")
        for stream in (False, True)
        for concurrency in (1, 16, 64)
    ]


async def stats_requests(session: aiohttp.ClientSession, url: str) -> int:
    """The request count `/stats` reports (whichever worker answers)."""
    async with session.get(f"{url}/stats") as response:
        return (await response.json())["requests"]


async def measure_scaling(profile: Profile, sim_url: str, log_dir: Path, workers: int) -> dict[str, Any]:
    """Instant backend, forced route, non-streaming, c=64: router req/s with 1 and `workers` workers."""
    scenario = Scenario("instant", "forced", False, 64)
    _, router_body = bodies(scenario, 12)
    await asyncio.to_thread(httpx.post, f"{sim_url}/sim/config", json=sim_config_for(profile, scenario))
    out: dict[str, Any] = {"workload": scenario.key, "requests": profile.scaling_requests}
    for n in (1, workers):
        process, url = await asyncio.to_thread(start_router, sim_url, log_dir, n)
        try:
            async with new_session() as client:
                await run_segment(client, f"{url}/api/route", router_body, False, 256, 64)
                before = await stats_requests(client, url)
                seg = await run_segment(client, f"{url}/api/route", router_body, False,
                                        profile.scaling_requests, 64)
                after = await stats_requests(client, url)
        finally:
            await asyncio.to_thread(stop, process)
        out[f"workers_{n}"] = {
            "rps": round(len(seg.latencies) / seg.wall_s, 1),
            "p50_ms": _r(pct(seg.latencies, 0.5)),
            "errors": seg.errors,
            "stats_counted": after - before,
            "stats_correct": after - before == profile.scaling_requests,
        }
    out["speedup"] = round(out[f"workers_{workers}"]["rps"] / out["workers_1"]["rps"], 2)
    return out


async def record_profile(profile: Profile, sim_url: str, router_url: str, router_pid: int, out: Path) -> str:
    """Record a py-spy flame graph of the router on the instant non-streaming forced workload."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        return "skipped: py-spy not installed (pip install -e '.[dev]')"
    scenario = Scenario("instant", "forced", False, 16)
    _, router_body = bodies(scenario, 12)
    await asyncio.to_thread(httpx.post, f"{sim_url}/sim/config", json=sim_config_for(profile, scenario))
    spy = subprocess.Popen(
        [py_spy, "record", "--pid", str(router_pid), "--rate", "500", "--duration", "8",
         "--format", "flamegraph", "--output", str(out / "profile.svg"), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    async with new_session() as client:
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline and spy.poll() is None:
            await run_segment(client, f"{router_url}/api/route", router_body, False, 200, 16)
    _, err = await asyncio.to_thread(spy.communicate)
    if spy.returncode != 0:
        return f"failed: {err.decode(errors='replace')[-300:]}"
    return "profile.svg"


# --- cascade: the local classifier in front of a 150 ms LLM classifier ------------------------

CASCADE_FALLBACK_PROMPTS = (
    "hi", "thanks!", "write a regex for email addresses", "latest news on the election",
    "Prove that there are infinitely many primes", PROMPT, "what's the weather in Paris today?",
    "Refactor this Go function to use generics",
)


def cascade_prompts(limit: int, path: Path) -> list[str]:
    """Non-META prompts of the regression set (a realistic mix of easy and hard), else a short list."""
    prompts: list[str] = []
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            messages = (row.get("inputs") or {}).get("messages") or []
            if (row.get("outputs") or {}).get("route") != "META" and len(messages) == 1:
                prompts.append(messages[0]["content"])
    prompts = prompts or list(CASCADE_FALLBACK_PROMPTS)
    return [prompts[(i * 7) % len(prompts)] for i in range(limit)]  # spread over the set, deterministic


CASCADE_MODES = ("off", "shadow", "auto", "on")
CASCADE_DELAYS_MS = (0.0, 150.0)
AUTO_BENCH_ENV = {"LOCAL_CLASSIFIER_AUTO_MIN_SAMPLES": "20", "LOCAL_CLASSIFIER_AUTO_MIN_AGREEMENT": "0.85",
                  "LOCAL_CLASSIFIER_AUTO_AUDIT": "0.05"}
"""`auto` in the benchmark: a low bar, so that the seeded state (`seed_agreement`: the simulator's
keyword classifier as the teacher) promotes the routes where the two agree, and the measured pass
shows what a promoted route costs and saves. A deployment's bar is 0.97 over 200 samples."""
AUTO_SEED_ROUNDS = 10
"""Times the prompts are counted in the seeded agreement state of the `auto` router."""


def seed_agreement(path: Path, prompts: list[str]) -> dict[str, Any]:
    """Write an agreement state for the `auto` router: the local model's confident predictions on
    `prompts` against the simulator's keyword classifier, as if that traffic had been served.

    The benchmark's own requests are synthetic and never measured (a load test must not move
    what auto promotes), so the state is seeded instead of earned.
    """
    sys.path.insert(0, str(ROOT))
    from core.routes import classifiable_labels
    from core.routing.agreement import AgreementTracker, AutoPolicy
    from core.routing.local_decision import assess
    from core.routing.local_model import LocalModel
    from tools.simulator import classify as simulator_classify

    model = LocalModel.load(ROOT / "models" / "router_classifier" / "model.json")
    tracker = AgreementTracker(AutoPolicy(min_agreement=float(AUTO_BENCH_ENV["LOCAL_CLASSIFIER_AUTO_MIN_AGREEMENT"]),
                                          min_samples=int(AUTO_BENCH_ENV["LOCAL_CLASSIFIER_AUTO_MIN_SAMPLES"])))
    labels = classifiable_labels()
    for round_ in range(AUTO_SEED_ROUNDS):
        for k, text in enumerate(prompts):
            local = assess(model, [{"role": "user", "content": text}], labels, None)
            if local["confident"]:
                tracker.observe(local["label"], simulator_classify(text), f"bench-{round_}-{k}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tracker.to_state()))
    return {route: f["promoted"] for route, f in tracker.snapshot()["routes"].items()}


async def measure_cascade(sim_url: str, log_dir: Path, requests: int, dataset: Path) -> dict[str, Any]:
    """Full path, c=1: added p50/p99 and RSS with LOCAL_CLASSIFIER off, shadow, auto and on, side by side.

    One router per mode, all up at once; each prompt is sent directly to the simulator and through
    every router in turn (the order rotating with the prompt), so the machine's load falls on every
    mode alike and each figure is a difference against the direct calls of the same run.
    Sequential non-streaming requests on an instant primary, with the LLM classifier answering at
    once and in 150 ms. The routers' session records give the local prediction time and the share
    decided locally.
    """
    prompts = cascade_prompts(requests, dataset)

    def body(text: str, model: str) -> bytes:
        return json.dumps({"model": model, "messages": [{"role": "user", "content": text}]}).encode()

    async def timed(client: aiohttp.ClientSession, url: str, payload: bytes) -> float:
        started = time.perf_counter()
        async with client.post(url, data=payload, headers=JSON_HEADERS) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"cascade benchmark: {url} answered {response.status}")
        return (time.perf_counter() - started) * 1000

    out: dict[str, Any] = {"requests": requests, "concurrency": 1, "modes": list(CASCADE_MODES),
                           "classifier_delays_ms": list(CASCADE_DELAYS_MS), "auto_env": AUTO_BENCH_ENV,
                           "prompts": str(dataset) if dataset.is_file() else "built-in list"}
    routers: dict[str, tuple[subprocess.Popen, str, Path]] = {}
    phases: list[tuple[float, dict[str, list[float]], float, float, dict[str, dict[str, float]]]] = []

    def start(mode: str) -> tuple[subprocess.Popen, str, Path]:
        sessions = log_dir / f"cascade-{mode}-sessions"
        env = {"LOCAL_CLASSIFIER": mode, "SESSION_LOG_DIR": str(sessions), "TRACES": "off", "ROUTE_CACHE_SIZE": "0"}
        if mode == "auto":
            env.update(AUTO_BENCH_ENV)
        process, url = start_router(sim_url, log_dir, 1, env)
        return process, url, sessions

    seeded = seed_agreement(log_dir / "cascade-auto-sessions" / "state" / "local_classifier_agreement.json", prompts)
    try:
        started = await asyncio.gather(*(asyncio.to_thread(start, mode) for mode in CASCADE_MODES))
        routers = dict(zip(CASCADE_MODES, started, strict=True))
        targets = {"direct": (f"{sim_url}/v1/chat/completions", PRIMARY_MODEL),
                   **{mode: (f"{url}/v1/chat/completions", "ai-router") for mode, (_, url, _) in routers.items()}}
        async with new_session() as client:
            for url, model in targets.values():
                await timed(client, url, body("hello", model))  # warm-up
            for delay in CASCADE_DELAYS_MS:
                await asyncio.to_thread(httpx.post, f"{sim_url}/sim/config", json={
                    "ttft_ms": 0.0, "token_delay_ms": 0.0, "tokens": 12, "classifier_delay_ms": delay})
                times: dict[str, list[float]] = {name: [] for name in targets}
                names = list(targets)
                began = time.time()
                for k, text in enumerate(prompts):
                    for name in names[k % len(names):] + names[:k % len(names)]:
                        url, model = targets[name]
                        times[name].append(await timed(client, url, body(text, model)))
                ended = time.time()
                memory = {mode: memory_mb(process.pid) for mode, (process, _, _) in routers.items()}
                phases.append((delay, times, began, ended, memory))
    finally:  # the session writers flush their records on the way out
        await asyncio.gather(*(asyncio.to_thread(stop, process) for process, _, _ in routers.values()))
    for delay, times, began, ended, memory in phases:
        direct = times["direct"]
        series: dict[str, Any] = {"direct_p50_ms": _r(pct(direct, 0.5)), "direct_p99_ms": _r(pct(direct, 0.99))}
        for mode, (_, _, sessions) in routers.items():
            records = [json.loads(f.read_text()) for f in sorted(sessions.glob("*.json"))]
            records = [r for r in records if began - 0.001 <= _record_time(r) <= ended + 0.001]
            local = [r["local_classification"] for r in records if r.get("local_classification")]
            cell: dict[str, Any] = {
                "router_p50_ms": _r(pct(times[mode], 0.5)),
                "added_p50_ms": _diff(pct(direct, 0.5), pct(times[mode], 0.5)),
                "added_p99_ms": _diff(pct(direct, 0.99), pct(times[mode], 0.99)),
                "rss_mb": memory[mode]["rss_mb"],
                "rss_peak_mb": memory[mode]["peak_mb"],
            }
            if local and records:
                cell["decided_locally"] = round(sum(bool(x.get("decided")) for x in local) / len(records), 3)
                timings = [x["ms"] for x in local if x.get("ms")]
                cell["local_classification_p50_ms"] = _r(pct(timings, 0.5)) if timings else None
                cell["local_classification_p99_ms"] = _r(pct(timings, 0.99)) if timings else None
            if mode == "auto":
                cell["promoted"] = sorted(route for route, promoted in seeded.items() if promoted)
            series[mode] = cell
        out[f"classifier_{delay:.0f}ms"] = series
    # Older readers (targets, the published results) read the 150 ms series under these names.
    slow = out[f"classifier_{CASCADE_DELAYS_MS[-1]:.0f}ms"]
    out["classifier_delay_ms"] = CASCADE_DELAYS_MS[-1]
    out["direct_p50_ms"] = slow["direct_p50_ms"]
    out["cascade_off"], out["cascade_on"] = slow["off"], slow["on"]
    return out


def _record_time(record: dict[str, Any]) -> float:
    """When a session record's request started (epoch seconds; 0 when unknown)."""
    value = record.get("started_at") or record.get("timestamp")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return 0.0
    return 0.0


def cascade_table(cascade: dict[str, Any]) -> list[str]:
    """The off / shadow / auto / on comparison as Markdown lines (one table per classifier delay)."""
    lines = []
    for delay in cascade.get("classifier_delays_ms") or ():
        series = cascade[f"classifier_{delay:.0f}ms"]
        lines += [
            f"LLM classifier answering in {delay:.0f} ms (direct p50 {series['direct_p50_ms']} ms, "
            f"p99 {series['direct_p99_ms']} ms):", "",
            "| LOCAL_CLASSIFIER | added p50 ms | added p99 ms | router RSS MB (peak) | decided locally "
            "| local prediction p50 / p99 ms | promoted (auto) |",
            "|---|---|---|---|---|---|---|",
        ]
        for mode in cascade["modes"]:
            c = series[mode]
            lines.append(
                f"| {mode} | {c['added_p50_ms']} | {c['added_p99_ms']} | {c['rss_mb']} ({c['rss_peak_mb']}) | "
                f"{c.get('decided_locally', 0):.0%} | {c.get('local_classification_p50_ms', '-')} / "
                f"{c.get('local_classification_p99_ms', '-')} | "
                f"{', '.join(c['promoted']) or 'none' if 'promoted' in c else '-'} |")
        lines.append("")
    return lines


# --- the local classifier alone: one core, in a fresh process ---------------------------------

_LOCAL_PROBE = r"""
import json, os, sys, time
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
def rss():
    for line in open(f"/proc/{os.getpid()}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
import numpy, core.messages  # what the router has loaded anyway
before = rss()
from pathlib import Path
from core.routing.local_model import LocalModel
started = time.perf_counter()
model = LocalModel.load(Path(sys.argv[1]))
load_s = time.perf_counter() - started
prompts = json.loads(sys.argv[2])
for p in prompts[:20]:
    model.predict([{"role": "user", "content": p}])
timings = []
for _ in range(3):
    for p in prompts:
        started = time.perf_counter()
        model.predict([{"role": "user", "content": p}])
        timings.append((time.perf_counter() - started) * 1000)
timings.sort()
print(json.dumps({"p50_ms": timings[len(timings) // 2], "p99_ms": timings[int(len(timings) * 0.99)],
                  "rss_growth_mb": rss() - before, "load_s": load_s, "version": model.version,
                  "predictions": len(timings)}))
"""


def measure_local_model(model_path: Path, dataset: Path) -> dict[str, Any]:
    """The local classifier on one core in a fresh process: prediction p50/p99 (features included),
    the RSS it adds once loaded (model file, embedding matrix, tokenizer) and its artefacts' size."""
    prompts = cascade_prompts(300, dataset)
    probe = subprocess.run([sys.executable, "-c", _LOCAL_PROBE, str(model_path), json.dumps(prompts)],
                           capture_output=True, text=True, cwd=ROOT, check=True)
    out = json.loads(probe.stdout.strip().splitlines()[-1])
    repo_bytes = sum(f.stat().st_size for f in model_path.parent.iterdir() if f.is_file())
    sys.path.insert(0, str(ROOT))
    from core.routing.embedding import package_dir

    package = package_dir()
    wheel_bytes = sum(f.stat().st_size for f in (package / "weights").iterdir()) + sum(
        f.stat().st_size for f in (package / "tokenizers").glob("*.json")) if package else 0
    out.update({"artefacts_repo_mb": round(repo_bytes / 1e6, 2), "embedding_files_mb": round(wheel_bytes / 1e6, 2)})
    return {k: _r(v) if isinstance(v, float) else v for k, v in out.items()}


# --- report -------------------------------------------------------------------------------

def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Check the targets of the issue; each entry says what was measured and whether it holds."""
    s = results["scenarios"]
    checks: list[dict[str, Any]] = []

    def check(name: str, value: Any, ok: bool | None) -> None:
        checks.append({"target": name, "measured": value, "holds": ok})

    v = s["instant/forced/nonstream/c1"]["added_p50_ms"]
    check("forced, instant, c1, non-streaming: added p50 <= 3 ms", v, v is not None and v <= 3)
    v = s["instant/forced/stream/c1"]["added_ttft_p50_ms"]
    check("forced, instant, c1, streaming: added TTFT p50 <= 5 ms", v, v is not None and v <= 5)
    cell = s["realistic/forced/stream/c1"]
    d_gap, r_gap = cell["direct"]["chunk_gap_p50_ms"], cell["router"]["chunk_gap_p50_ms"]
    check("streaming: no per-chunk buffering (router chunk spacing >= 0.8 x direct, same chunk count)",
          {"direct_gap_ms": d_gap, "router_gap_ms": r_gap,
           "direct_chunks": cell["direct"]["chunks_p50"], "router_chunks": cell["router"]["chunks_p50"]},
          bool(d_gap and r_gap and r_gap >= 0.8 * d_gap))
    for path in ("forced", "classify"):
        for mode in ("nonstream", "stream"):
            cell = s[f"realistic/{path}/{mode}/c64"]
            check(f"realistic, c64, {path}, {mode}: throughput >= 0.9 x direct",
                  cell["throughput_ratio"], (cell["throughput_ratio"] or 0) >= 0.9)
            check(f"realistic, c64, {path}, {mode}: added p99 <= 50 ms",
                  cell["added_p99_ms"], cell["added_p99_ms"] is not None and cell["added_p99_ms"] <= 50)
    peak = results["router_memory"]["peak_mb"]
    check("router RSS at peak < 250 MB (one worker)", peak, peak < 250)
    scaling = results.get("scaling")
    if scaling and "speedup" in scaling:
        n = results["workers"]
        check(f"WORKERS={n} raises instant throughput near-linearly (>= {0.75 * n:.1f}x)",
              scaling["speedup"], scaling["speedup"] >= 0.75 * n)
        check("/stats counts every request across workers",
              scaling[f"workers_{n}"]["stats_counted"], scaling[f"workers_{n}"]["stats_correct"])
    cascade = results.get("cascade")
    if cascade:
        on = cascade["cascade_on"]
        v = on.get("local_classification_p50_ms")
        check("local classification p50 <= 2 ms (router process, one worker)", v, v is not None and v <= 2)
        check("router RSS with the local model loaded < 250 MB", on["rss_peak_mb"], on["rss_peak_mb"] < 250)
        grow = round(on["rss_peak_mb"] - cascade["cascade_off"]["rss_peak_mb"], 1)
        check("router RSS grows <= 100 MB with the local model loaded (on vs off)", grow, grow <= 100)
        for mode in ("shadow", "auto"):
            series = cascade.get(f"classifier_{cascade['classifier_delay_ms']:.0f}ms") or {}
            if mode in series:
                rss = series[mode]["rss_mb"]
                check(f"router RSS with the local model loaded <= 250 MB ({mode})", rss, rss <= 250)
    local = results.get("local_model")
    if local:
        check("local classification p50 <= 2 ms (one core, features included)", local["p50_ms"],
              local["p50_ms"] <= 2)
        check("RSS growth of loading the local model <= 100 MB", local["rss_growth_mb"], local["rss_growth_mb"] <= 100)
        check("local model artefacts in the repo <= 50 MB", local["artefacts_repo_mb"], local["artefacts_repo_mb"] <= 50)
    errors = sum(cell["errors"] for cell in s.values())
    check("no errors in any scenario", errors, errors == 0)
    return checks


def markdown(results: dict[str, Any]) -> str:
    """The Markdown report: machine, scenario table, targets."""
    m = results["machine"]
    lines = [
        "# ai-router benchmark", "",
        f"Run {results['started']} ({'quick smoke run, scaled-down workload' if results['quick'] else 'full run'}).",
        f"Machine: {m['cpus']} CPU cores ({m['cpu_model']}), {m['memory_gb']} GB RAM, {m['platform']}, "
        f"Python {m['python']}. The load generator, the simulator and the router share these cores.", "",
        "Added = router minus direct, same workload, ABBA-alternated in the same run. "
        "Throughput = router req/s / direct req/s. CPU = router process CPU time per routed request.", "",
        "| scenario | direct p50 ms | added p50 ms | added p99 ms | added TTFT p50 ms | throughput x "
        "| router CPU ms/req | direct req/s | router req/s | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, c in results["scenarios"].items():
        lines.append(
            f"| {key} | {c['direct']['p50_ms']} | {c['added_p50_ms']} | {c['added_p99_ms']} | "
            f"{c['added_ttft_p50_ms'] if c['added_ttft_p50_ms'] is not None else '-'} | {c['throughput_ratio']} | "
            f"{c['router_cpu_ms_per_request']} | {c['direct']['rps']} | {c['router']['rps']} | {c['errors']} |"
        )
    mem = results["router_memory"]
    lines += ["", f"Router memory (one worker): idle {mem['idle_mb']} MB, peak {mem['peak_mb']} MB.", ""]
    scaling = results.get("scaling")
    if scaling and "speedup" in scaling:
        n = results["workers"]
        lines += [
            f"Scaling ({scaling['workload']}, {scaling['requests']} requests): 1 worker "
            f"{scaling['workers_1']['rps']} req/s, {n} workers {scaling[f'workers_{n}']['rps']} req/s "
            f"(x{scaling['speedup']}); `/stats` counted {scaling[f'workers_{n}']['stats_counted']} of "
            f"{scaling['requests']} across workers.", "",
        ]
    elif scaling:
        lines += [f"Scaling: {scaling}", ""]
    cascade = results.get("cascade")
    if cascade:
        lines += [
            f"Local classifier modes side by side (full path, {cascade['requests']} regression-set prompts, c=1, "
            f"non-streaming, instant primary; added = router minus a direct call in the same run; `auto` on an "
            f"agreement state seeded from the simulator's keyword classifier, at a low bar: "
            f"{cascade['auto_env']}):", "",
            *cascade_table(cascade),
        ]
    local = results.get("local_model")
    if local:
        lines += [
            f"Local classifier `{local['version']}` alone (fresh process pinned to one core, "
            f"{local['predictions']} predictions of regression-set prompts, features included): p50 "
            f"{local['p50_ms']} ms, p99 {local['p99_ms']} ms; loading it adds {local['rss_growth_mb']} MB RSS "
            f"(load {local['load_s']} s); artefacts in the repo {local['artefacts_repo_mb']} MB, embedding "
            f"files read from the wordllama wheel {local['embedding_files_mb']} MB.", "",
        ]
    lines += [f"Profile: {results.get('profile')}", "", "## Targets", "", "| target | measured | holds |", "|---|---|---|"]
    for t in results["targets"]:
        lines.append(f"| {t['target']} | {json.dumps(t['measured'])} | {'yes' if t['holds'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def machine() -> dict[str, Any]:
    """What this ran on."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gb": round(mem_kb / 1024 / 1024, 1),
            "platform": platform.platform(), "python": platform.python_version()}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Run everything and return the results."""
    profile = QUICK if args.quick else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="ai-router-bench-"))
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "quick": args.quick,
                               "machine": machine(), "workers": args.workers, "logs": str(log_dir)}
    sim, sim_url = await asyncio.to_thread(start_simulator, log_dir)
    router, router_url = await asyncio.to_thread(start_router, sim_url, log_dir)
    try:
        idle = memory_mb(router.pid)
        scenarios = [sc for sc in matrix() if not args.only or args.only in sc.key]
        results["scenarios"] = {}
        for i, scenario in enumerate(scenarios, 1):
            began = time.perf_counter()
            cell = await run_scenario(scenario, profile, sim_url, router_url, router.pid)
            results["scenarios"][scenario.key] = cell
            print(f"[{i:2}/{len(scenarios)}] {scenario.key:34} added p50 {cell['added_p50_ms']:>7} ms  "
                  f"p99 {cell['added_p99_ms']:>7} ms  thr x{cell['throughput_ratio']}  "
                  f"cpu {cell['router_cpu_ms_per_request']} ms/req  err {cell['errors']}  "
                  f"({time.perf_counter() - began:.1f} s)", file=sys.stderr, flush=True)
        results["router_memory"] = {"idle_mb": idle["rss_mb"], **{k: v for k, v in memory_mb(router.pid).items()}}
        if args.quick or args.no_profile or args.only:
            results["profile"] = "skipped (--quick / --no-profile / --only)"
        else:
            print("profiling the router (instant, forced, non-streaming) with py-spy ...", file=sys.stderr, flush=True)
            results["profile"] = await record_profile(profile, sim_url, router_url, router.pid, out)
    finally:
        await asyncio.to_thread(stop, router)
    try:
        if args.quick or args.only:
            results["scaling"] = "skipped (--quick / --only)"
        else:
            print(f"scaling: 1 vs {args.workers} workers ...", file=sys.stderr, flush=True)
            results["scaling"] = await measure_scaling(profile, sim_url, log_dir, args.workers)
    finally:
        await asyncio.to_thread(stop, sim)
    if not args.only or "local" in args.only:
        print("local classifier: one core, fresh process ...", file=sys.stderr, flush=True)
        results["local_model"] = await asyncio.to_thread(
            measure_local_model, ROOT / "models" / "router_classifier" / "model.json", Path(args.cascade_prompts))
    if not args.only or "cascade" in args.only:
        print("cascade: local classifier on vs off, classifier at 150 ms ...", file=sys.stderr, flush=True)
        sim, sim_url = await asyncio.to_thread(start_simulator, log_dir)
        try:
            results["cascade"] = await measure_cascade(sim_url, log_dir, 10 if args.quick else 120,
                                                      Path(args.cascade_prompts))
        finally:
            await asyncio.to_thread(stop, sim)
        print("\n".join(cascade_table(results["cascade"])), file=sys.stderr, flush=True)
    # A partial run (--only) lacks the cells the targets are defined on.
    results["targets"] = [] if args.only else targets(results)
    return results


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run with a scaled-down workload")
    parser.add_argument("--out", default=None,
                        help="where results go (default: a new benchmarks/runs/<time>/; see --save)")
    parser.add_argument("--save", action="store_true",
                        help="write over the published results in benchmarks/results/ (tracked by git)")
    parser.add_argument("--check", action="store_true", help="exit 1 when any target does not hold")
    parser.add_argument("--workers", type=int, default=2, help="workers for the scaling measurement")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--only", default="", help="run only scenarios whose key contains this (e.g. instant/forced)")
    parser.add_argument("--cascade-prompts", default=str(ROOT / "evals" / "datasets" / "routing_regression.jsonl"),
                        help="JSONL dataset whose non-META prompts the cascade scenario sends")
    args = parser.parse_args()
    if args.out is None:
        args.out = str(ROOT / "benchmarks" / ("results" if args.save else f"runs/{time.strftime('%Y%m%dT%H%M%S')}"))
    # SIGTERM (a CI timeout, a kill) ends the run like Ctrl-C, so the children are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        import uvloop  # the router runs on uvloop too; the load generator should not be the bottleneck
    except ImportError:
        uvloop = None
    try:
        results = uvloop.run(main_async(args)) if uvloop else asyncio.run(main_async(args))
    finally:
        for child in CHILDREN:
            stop(child)
    out = Path(args.out)
    name = "quick" if args.quick else ("partial" if args.only else "results")
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown(results))
    print(f"\nwrote {out / (name + '.json')} and {out / (name + '.md')}")
    for t in results["targets"]:
        print(f"  [{'ok' if t['holds'] else 'NO'}] {t['target']}: {json.dumps(t['measured'])}")
    missed = [t for t in results["targets"] if not t["holds"]]
    if args.check and missed:
        print(f"--check: {len(missed)} of {len(results['targets'])} targets do not hold", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
