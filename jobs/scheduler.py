"""Builds the APScheduler clock. Jobs are thin: they read the time and call a pass."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from jobs.passes import JobConfig, purge_credentials

# A pass that was due while the process was busy or down runs once, late, rather than not at all or many times.
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}


def build_scheduler(config: JobConfig, clock: Callable[[], datetime]) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)

    async def purge() -> None:
        await purge_credentials(config, clock())

    scheduler.add_job(purge, "interval", hours=1, id="account.purge_expired_credentials", replace_existing=True)
    return scheduler
