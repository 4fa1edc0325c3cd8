"""Start the router; with no backend configured, start the embedded simulator first.

`make run` calls this (`make studio` calls it with `studio`: LangGraph's dev server for
Studio instead of the HTTP router). When neither the environment nor `.env` sets `PRIMARY_BASE_URL`
(or `SIMULATOR=on` is set), a backend simulator is started on a free loopback port and
the primary, classifier and xAI URLs all point at it, with a placeholder xAI key, so
that every route can be tried on a laptop with no GPU and no key.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn

from core.settings import Settings

SIM_XAI_KEY = "sim-placeholder-key"  # not a secret: the simulator accepts any key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wants_simulator(settings: Settings) -> bool:
    choice = os.environ.get("SIMULATOR", "auto").strip().lower()
    if choice in ("on", "1", "true"):
        return True
    if choice in ("off", "0", "false"):
        return False
    if choice not in ("auto", ""):
        raise SystemExit(f"ai-router: SIMULATOR={os.environ['SIMULATOR']!r} is not one of auto, on, off.")
    return "primary_base_url" not in settings.model_fields_set


def _port_taken(host: str, port: int) -> bool:
    """Whether something already listens on `host:port` (so binding it would fail)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def start_simulator(classifier_model: str) -> str:
    """Start the simulator in a child process; return its base URL once it answers."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.simulator", "--host", "127.0.0.1", "--port", str(port),
         "--classifier-model", classifier_model, "--token-delay-ms", os.environ.get("SIM_TOKEN_DELAY_MS", "20")],
    )
    atexit.register(process.terminate)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"The backend simulator exited with code {process.returncode}.")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return f"{url}/v1"
        except httpx.TransportError:
            time.sleep(0.1)  # polling a child process that is still starting
    raise SystemExit("The backend simulator did not start within 30 s.")


def share_metrics_dir() -> str:
    """Point `PROMETHEUS_MULTIPROC_DIR` at an empty directory the workers will share.

    An operator-given directory is emptied first: files left by an earlier run would be
    counted again (prometheus_client's multiprocess mode requires a clean directory).
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        for stale in Path(path).glob("*.db"):
            stale.unlink()
        Path(path).mkdir(parents=True, exist_ok=True)
    else:
        path = tempfile.mkdtemp(prefix="ai-router-metrics-")
        atexit.register(shutil.rmtree, path, True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def serve(settings: Settings) -> None:
    """Run the router under uvicorn with `settings.workers` processes.

    uvloop and httptools (from `uvicorn[standard]`) are asked for explicitly: they halve
    the server's per-request cost compared with asyncio and h11. With more than one worker
    the workers share metrics through a directory, so `/stats` and `/metrics` count every
    worker's requests.
    """
    if settings.workers > 1:
        share_metrics_dir()
    uvicorn.run(
        "server:app", host=settings.host, port=settings.port, workers=settings.workers,
        loop="uvloop", http="httptools", log_level="info",
        timeout_graceful_shutdown=int(settings.graceful_shutdown_s),
        # uvicorn kills a worker that does not answer its supervisor's ping within this; a worker
        # still importing the graph (3 s on an idle 2-core machine, far more under load) would be
        # killed and restarted over and over, leaving one worker to serve everything.
        timeout_worker_healthcheck=60,
    )


def studio(settings: Settings) -> int:
    """Serve the graph to LangGraph Studio with `langgraph dev` on loopback; return its exit code.

    `STUDIO_PORT` (default 2024) picks the port. Tracing to LangSmith and the CLI's usage
    analytics stay off unless the environment turns them on.
    """
    env = {"LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1", **os.environ}
    port = os.environ.get("STUDIO_PORT", "2024")
    if _port_taken("127.0.0.1", int(port)):
        # langgraph dev would quietly move to another port, and every URL printed here and in
        # the README would be wrong: say so instead.
        print(f"ai-router: port {port} is already in use; stop what listens there or set STUDIO_PORT "
              "(make studio STUDIO_PORT=2025).", file=sys.stderr, flush=True)
        return 1
    # langgraph-cli has no `__main__`; run its click entry point with this interpreter.
    command = [sys.executable, "-c", "import sys; from langgraph_cli.cli import cli; sys.exit(cli())",
               "dev", "--no-browser", "--host", "127.0.0.1", "--port", port]
    print(f"ai-router: LangGraph dev server on http://127.0.0.1:{port} (open it from LangGraph Studio)",
          flush=True)
    process = subprocess.Popen(command, env=env)
    try:
        return process.wait()
    finally:  # stopped by a signal or Ctrl-C: take the dev server down with us
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def main() -> None:
    """Run the router (or, with the argument `studio`, `langgraph dev`) in the foreground."""
    # SIGTERM (make, docker stop, a test) must unwind like Ctrl-C, so that the atexit hook
    # stops the simulator child instead of leaving it running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    settings = Settings()
    studio_mode = sys.argv[1:] == ["studio"]
    if not studio_mode and _port_taken(settings.host, settings.port):
        raise SystemExit(f"ai-router: cannot listen on {settings.host}:{settings.port}: the port is already in use "
                         "(another router?). Stop it or set PORT.")
    if _wants_simulator(settings):
        sim_url = start_simulator(settings.classifier_model)
        os.environ["PRIMARY_BASE_URL"] = sim_url
        os.environ["CLASSIFIER_BASE_URL"] = sim_url
        os.environ["XAI_BASE_URL"] = sim_url
        os.environ.setdefault("XAI_API_KEY", SIM_XAI_KEY)
        print(f"ai-router: no backend configured, using the embedded simulator at {sim_url}", flush=True)
    settings = Settings()
    if studio_mode:
        raise SystemExit(studio(settings))
    print(f"ai-router: listening on http://{settings.host}:{settings.port}/v1 (model {settings.virtual_model!r})",
          flush=True)
    serve(settings)


if __name__ == "__main__":
    main()
