"""Builds the APScheduler clock. Jobs are thin: they read the time and call a pass.

APScheduler keeps no state here (in-memory job store, UTC): all prompt state lives in the database, so any number
of jobs processes may run, and a restarted one simply picks up where the rows say.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from jobs.passes import Counts, JobConfig, dispatch, expire_prompts, plan_prompts, purge_credentials

Pass = Callable[[JobConfig, datetime], Awaitable[Counts]]

# A pass that was due while the process was busy or down runs once, late, rather than many times or not at all.
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}

SCHEDULE: tuple[tuple[str, Pass, dict[str, int]], ...] = (
    ("push.dispatch", dispatch, {"seconds": 15}),
    ("prompt.expire", expire_prompts, {"minutes": 1}),
    ("prompt.plan", plan_prompts, {"minutes": 10}),
    ("account.purge_expired_credentials", purge_credentials, {"hours": 1}),
)


def build_scheduler(config: JobConfig, clock: Callable[[], datetime]) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
    for job_id, run, every in SCHEDULE:
        scheduler.add_job(_bind(run, config, clock), "interval", id=job_id, replace_existing=True, **every)
    return scheduler


def _bind(run: Pass, config: JobConfig, clock: Callable[[], datetime]) -> Callable[[], Awaitable[Counts]]:
    async def job() -> Counts:
        return await run(config, clock())

    return job
