"""The APScheduler clock. Jobs are thin: they read the time and call a pass.

APScheduler keeps no state here (in-memory job store, UTC): all prompt state lives in the database, so any number
of jobs processes may run, and a restarted one picks up where the rows say.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from jobs.passes import (
    Counts,
    JobConfig,
    alert_time_rules,
    dispatch,
    escalate_alerts,
    expire_prompts,
    plan_prompts,
    purge_credentials,
    push_receipts,
)

log = logging.getLogger("interlude.jobs")

Pass = Callable[[JobConfig, datetime], Awaitable[Counts]]

# A pass that was due while the process was busy or down runs once, late, rather than many times or not at all.
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}

SCHEDULE: tuple[tuple[str, Pass, dict[str, int]], ...] = (
    ("push.dispatch", dispatch, {"seconds": 15}),
    ("prompt.expire", expire_prompts, {"minutes": 1}),
    ("prompt.plan", plan_prompts, {"minutes": 10}),
    ("push.receipts", push_receipts, {"minutes": 5}),
    ("account.purge_expired_credentials", purge_credentials, {"hours": 1}),
    ("alert.escalate", escalate_alerts, {"minutes": 1}),
    ("alert.time_rules", alert_time_rules, {"hours": 1}),
)


class JobClock:
    """The scheduler, plus a graceful stop: no new runs, then wait for the running passes to finish.

    APScheduler's own shutdown cancels running coroutines; a dispatch cancelled between claim and send would leave
    its rows for the lease to expire. Draining first lets it record what it sent.
    """

    def __init__(self, config: JobConfig, clock: Callable[[], datetime]) -> None:
        self.scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        for job_id, run, every in SCHEDULE:
            job = self._bind(job_id, run, config, clock)
            self.scheduler.add_job(job, "interval", id=job_id, replace_existing=True, **every)

    def start(self) -> None:
        self.scheduler.start()
        log.info("jobs.started", extra={"jobs": [job_id for job_id, _, _ in SCHEDULE]})

    async def stop(self, grace_seconds: float = 30.0) -> None:
        self.scheduler.pause()
        try:
            await asyncio.wait_for(self._idle.wait(), grace_seconds)
        except TimeoutError:
            log.warning("jobs.stop_timeout", extra={"running": self._running})
        self.scheduler.shutdown(wait=False)
        log.info("jobs.stopped")

    def _bind(
        self, job_id: str, run: Pass, config: JobConfig, clock: Callable[[], datetime]
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        async def job() -> None:
            self._running += 1
            self._idle.clear()
            try:
                await run(config, clock())
            except Exception as exc:
                # Type only: database errors can quote row values.
                log.error("jobs.failed", extra={"job": job_id, "error": type(exc).__name__})
            finally:
                self._running -= 1
                if self._running == 0:
                    self._idle.set()

        return job
