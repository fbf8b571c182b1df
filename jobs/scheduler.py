"""The APScheduler clock. Jobs are thin: they read the time and call a pass.

APScheduler keeps no state here (in-memory job store, UTC): all prompt state lives in the database, so any number
of jobs processes may run, and a restarted one picks up where the rows say.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
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
    purge_erased,
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
    # Holds end on a day, not a minute; but an interval counts from process start, and a daily one would never run
    # in a deployment restarted daily. Hourly, a pass that finds nothing is one indexed query.
    ("erasure.purge", purge_erased, {"hours": 1}),
)


class JobClock:
    """The scheduler, plus a graceful stop: no new runs, then wait for the running passes to finish.

    APScheduler's own shutdown cancels running coroutines; a dispatch cancelled between claim and send would leave
    its rows for the lease to expire. Draining first lets it record what it sent; a running dispatch finishes the
    send in hand and gives the rest of its claim back.
    """

    def __init__(self, config: JobConfig, clock: Callable[[], datetime]) -> None:
        self.scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        # A dispatch asked to stop gives back what it has not sent yet instead of sending its whole batch.
        config = replace(config, delivery=replace(config.delivery, stopping=lambda: self._stopping))
        for job_id, run, every in SCHEDULE:
            job = self._bind(job_id, run, config, clock)
            self.scheduler.add_job(job, "interval", id=job_id, replace_existing=True, **_every(job_id, every, config))

    def start(self) -> None:
        self.scheduler.start()
        log.info("jobs.started", extra={"jobs": [job_id for job_id, _, _ in SCHEDULE]})

    async def stop(self, grace_seconds: float = 30.0) -> None:
        self._stopping = True
        self.scheduler.pause()
        log.info("jobs.stopping", extra={"running": self._running})
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


def _every(job_id: str, every: dict[str, int], config: JobConfig) -> Mapping[str, float]:
    """The dispatch sweeps at its scheduled interval, or every quarter lease if that is shorter: rows a dead
    dispatcher left are taken soon after its lease ends, also when the lease is short."""
    if job_id != "push.dispatch":
        return every
    return {"seconds": min(timedelta(**every), config.delivery.lease / 4).total_seconds()}
