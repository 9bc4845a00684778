"""Long-running work started from a page (imports, duplicate detection, AI assessments).

Jobs run one at a time per workspace in a background thread, each on its own
:class:`~leads.project.Project` connection opened with the requesting user as the actor, and
report progress that the page polls. A job is all-or-nothing where the project API is (an import
is one transaction; AI assessments are stored as they finish and a re-run continues), so a job
that fails or a server that stops leaves the project consistent. The job list lives in memory:
after a restart the project's own history (searches, activity, call log) tells what was done.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leads.errors import LeadsError
from leads.project import Project

__all__ = ["Job", "JobManager", "JobProgress"]

log = logging.getLogger(__name__)

MAX_KEPT = 200


@dataclass
class Job:
    id: int
    project_slug: str
    kind: str
    title: str
    user: str
    state: str = "queued"  # queued | running | done | failed
    done: int = 0
    total: int | None = None
    message: str = ""
    error: str | None = None
    result: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def percent(self) -> int | None:
        if not self.total:
            return None
        return max(0, min(100, round(100 * self.done / self.total)))


class JobProgress:
    """What a job's function gets: report progress, say what it is doing, record result lines."""

    def __init__(self, job: Job, lock: threading.Lock) -> None:
        self._job = job
        self._lock = lock

    def update(self, done: int, total: int | None = None, message: str | None = None) -> None:
        with self._lock:
            self._job.done = done
            if total is not None:
                self._job.total = total
            if message is not None:
                self._job.message = message

    def say(self, message: str) -> None:
        with self._lock:
            self._job.message = message

    def result(self, line: str) -> None:
        with self._lock:
            self._job.result.append(line)


JobFunction = Callable[[Project, JobProgress], None]


class JobManager:
    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leads-web-job")

    def submit(self, *, project_slug: str, project_path: Path, user: str, kind: str, title: str,
               function: JobFunction) -> Job:
        with self._lock:
            job = Job(id=next(self._ids), project_slug=project_slug, kind=kind, title=title, user=user)
            self._jobs[job.id] = job
            finished = [j.id for j in self._jobs.values() if not j.active]
            for old in finished[:-MAX_KEPT] if len(finished) > MAX_KEPT else []:
                del self._jobs[old]
        self._pool.submit(self._run, job, project_path, function)
        return job

    def _run(self, job: Job, project_path: Path, function: JobFunction) -> None:
        with self._lock:
            job.state, job.started = "running", time.time()
        try:
            with Project.open(project_path, actor=job.user) as project:
                function(project, JobProgress(job, self._lock))
        except LeadsError as exc:
            with self._lock:
                job.state, job.error = "failed", str(exc)
        except Exception as exc:  # a bug: keep the server up, show it, log the traceback
            log.error("job %s (%s) failed:\n%s", job.id, job.kind, traceback.format_exc())
            with self._lock:
                job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
        else:
            with self._lock:
                job.state = "done"
        finally:
            with self._lock:
                job.finished = time.time()

    def get(self, job_id: int, project_slug: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job if job is not None and job.project_slug == project_slug else None

    def for_project(self, project_slug: str, *, limit: int = 10) -> list[Job]:
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.project_slug == project_slug]
        return sorted(jobs, key=lambda j: j.id, reverse=True)[:limit]

    def snapshot(self, job: Job) -> dict[str, Any]:
        with self._lock:
            return {**job.__dict__, "result": list(job.result), "percent": job.percent, "active": job.active}

    def wait(self, job_id: int, timeout: float = 60.0) -> Job:
        """Block until a job ends (for scripts and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                job = self._jobs[job_id]
                if not job.active:
                    return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state} after {timeout} s")
            time.sleep(0.05)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
