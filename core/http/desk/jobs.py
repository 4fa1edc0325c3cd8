"""Background jobs of the review desk: evals and reviews, run as child processes.

The desk never imports `evals/`: a job runs the same programs the command line runs
(`python -m evals.build_dataset`, `python -m evals.run`, `python -m evals.review`), one step
after another, in a child process, so a long eval never stalls the router's event loop. Each
job keeps its state in `<work>/desk-jobs/<id>/job.json` and the programs' output in `log.txt`
beside it; progress is read from what the programs write (an eval's `results.jsonl` grows by
one line per replayed example).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.redact import redact

log = logging.getLogger("ai_router.desk")


@dataclass
class Job:
    """One background job and where it stands."""

    id: str
    kind: str
    """`eval` or `review`, `apply` (a review's edit gated by the regression eval)."""
    title: str
    steps: list[list[str]]
    """Argument lists after `python -m`, run in order; the job stops at the first that fails."""
    out: str
    """The folder the job's result lands in (an eval run's or a review's)."""
    status: str = "queued"
    step: int = 0
    returncode: int | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    total: int | None = None
    """Examples the eval replays, when known (for progress)."""
    dataset: str | None = None
    error: str | None = None
    runner_pid: int = field(default_factory=os.getpid)
    """The router process that runs it (another worker's job is read from its file)."""

    def as_dict(self) -> dict[str, Any]:
        """The job as JSON (what the API returns)."""
        return asdict(self)


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return 0


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs (another worker of this router, say)."""
    if pid == os.getpid():
        return False  # ours, and not among our running tasks: it ended without saving (a crash)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobRunner:
    """Start jobs as child processes and answer where they stand."""

    def __init__(self, work_dir: Path, env: dict[str, str], cwd: Path | None = None,
                 python: str = sys.executable, on_done: Callable[[Job], None] | None = None) -> None:
        """Keep jobs under `work_dir/desk-jobs`; children get `env` over this process's environment.

        `on_done` is called with each job that finished without error (an applied edit: the
        router reads its prompts again).
        """
        self.on_done = on_done
        self.work_dir = work_dir
        self.jobs_dir = work_dir / "desk-jobs"
        self.env = env
        self.cwd = cwd
        self.python = python
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def new_id(self, kind: str) -> str:
        """A sortable job id (UTC time, then the kind)."""
        return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}-{kind}"

    def _save(self, job: Job) -> None:
        folder = self.jobs_dir / job.id
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / ".job.json.tmp"
        temporary.write_text(json.dumps(job.as_dict(), indent=2), encoding="utf-8")
        os.replace(temporary, folder / "job.json")

    def start(self, job: Job) -> Job:
        """Start `job` in the background (on the running event loop) and return it."""
        self._save(job)
        self._tasks[job.id] = asyncio.get_running_loop().create_task(self._run(job), name=f"desk-job-{job.id}")
        return job

    async def _run(self, job: Job) -> None:
        folder = self.jobs_dir / job.id
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        job.status = "running"
        self._save(job)
        try:
            with (folder / "log.txt").open("ab") as output:
                for index, argv in enumerate(job.steps):
                    job.step = index
                    self._save(job)
                    output.write(f"$ python -m {' '.join(argv)}\n".encode())
                    output.flush()
                    process = await asyncio.create_subprocess_exec(
                        self.python, "-m", *argv, stdin=asyncio.subprocess.DEVNULL, stdout=output,
                        stderr=asyncio.subprocess.STDOUT, env=env, cwd=self.cwd,
                    )
                    try:
                        job.returncode = await process.wait()
                    except asyncio.CancelledError:
                        process.terminate()  # the router is stopping: leave no eval running behind it
                        raise
                    if job.returncode != 0:
                        break
                    if index == 0 and job.dataset and job.total is None:
                        job.total = _count_lines(Path(job.dataset))
        except (OSError, asyncio.CancelledError) as error:
            job.error = redact(f"{type(error).__name__}: {error}")
            job.returncode = job.returncode if job.returncode not in (None, 0) else -1
        job.status = "done" if job.returncode == 0 else "failed"
        job.finished_at = time.time()
        self._save(job)
        self._tasks.pop(job.id, None)
        if job.status == "done" and self.on_done is not None:
            try:
                self.on_done(job)
            except Exception as error:  # a failed hook must not lose the job's state
                log.error("desk job %s: after-job hook failed: %s", job.id, redact(repr(error)))

    def get(self, job_id: str) -> Job | None:
        """A job by id (from its folder, so jobs of an earlier run of the router are seen too)."""
        if not job_id.replace("-", "").replace("T", "").replace("Z", "").isalnum():
            return None
        path = self.jobs_dir / job_id / "job.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        job = Job(**data)
        if job.status in ("queued", "running") and job_id not in self._tasks and not _alive(job.runner_pid):
            job.status = "lost"  # the router process that ran it is gone
        return job

    def list(self, limit: int = 50) -> list[Job]:
        """The newest jobs first."""
        if not self.jobs_dir.is_dir():
            return []
        names = sorted((p.name for p in self.jobs_dir.iterdir() if p.is_dir()), reverse=True)[:limit]
        return [job for name in names if (job := self.get(name)) is not None]

    def progress(self, job: Job) -> dict[str, Any]:
        """Where a job stands: its step, examples replayed of the total, and the tail of its output."""
        done = None
        if job.kind == "eval":
            done = _count_lines(Path(job.out) / "results.jsonl") + _count_lines(
                Path(job.out) / "llm_only" / "results.jsonl")
        tail = ""
        with contextlib.suppress(OSError):
            data = (self.jobs_dir / job.id / "log.txt").read_bytes()[-4000:]
            tail = data.decode("utf-8", "replace").replace("\r", "\n")
            tail = "\n".join(line for line in tail.splitlines() if line.strip())[-1500:]
        return {**job.as_dict(), "replayed": done, "log_tail": redact(tail),
                "step_count": len(job.steps)}

    async def aclose(self) -> None:
        """Wait briefly for running jobs on shutdown; their children keep their own output."""
        for task in list(self._tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
