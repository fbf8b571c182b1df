"""The clock around the passes: a failing pass is logged without its message and does not stop the clock;
stopping waits for a running pass instead of cancelling it; the outbox lease comes from the settings."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from api.container import build_job_config
from jobs.passes import Counts, JobConfig
from jobs.scheduler import SCHEDULE, JobClock
from tests.conftest import make_settings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def clock() -> JobClock:
    return JobClock(build_job_config(make_settings()), lambda: NOW)


async def test_every_pass_is_registered_once_with_its_stable_id() -> None:
    jobs = clock()
    jobs.scheduler.start(paused=True)  # job defaults apply once the scheduler runs; paused, nothing fires
    try:
        registered = jobs.scheduler.get_jobs()
        assert sorted(j.id for j in registered) == sorted(job_id for job_id, _, _ in SCHEDULE)
        assert all(j.coalesce and j.max_instances == 1 for j in registered)
    finally:
        jobs.scheduler.shutdown(wait=False)


async def test_a_failing_pass_is_logged_by_type_only(caplog: pytest.LogCaptureFixture) -> None:
    async def failing(config: JobConfig, now: datetime) -> Counts:
        raise ValueError("duplicate key (email)=(alice@example.test)")

    job = clock()._bind("test.failing", failing, build_job_config(make_settings()), lambda: NOW)
    with caplog.at_level(logging.ERROR, logger="interlude.jobs"):
        await job()  # does not raise: the next run of the pass retries
    [record] = [r for r in caplog.records if r.getMessage() == "jobs.failed"]
    assert (record.job, record.error) == ("test.failing", "ValueError")  # type: ignore[attr-defined]
    assert "alice@example.test" not in caplog.text


async def test_stop_waits_for_a_running_pass_to_finish() -> None:
    release = asyncio.Event()
    finished: list[bool] = []

    async def slow(config: JobConfig, now: datetime) -> Counts:
        await release.wait()
        finished.append(True)
        return {}

    jobs = clock()
    job = jobs._bind("test.slow", slow, build_job_config(make_settings()), lambda: NOW)
    jobs.scheduler.start(paused=True)
    running = asyncio.create_task(job())
    await asyncio.sleep(0)  # let the pass start and mark the clock busy
    stopping = asyncio.create_task(jobs.stop(grace_seconds=5))
    for _ in range(10):  # ample turns for a stop that did not wait to finish
        await asyncio.sleep(0)
    assert not stopping.done()
    release.set()
    await asyncio.gather(running, stopping)
    assert finished == [True]


async def test_the_lease_setting_reaches_every_dispatcher() -> None:
    """`build_job_config` serves `interlude jobs`, the in-process jobs of `serve` and `jobs tick` alike."""
    settings = make_settings().model_copy(update={"push_lease_seconds": 40})
    config = build_job_config(settings)
    assert (config.delivery.lease, config.delivery.send_window) == (timedelta(seconds=40), timedelta(seconds=30))

    jobs = JobClock(config, lambda: NOW)
    jobs.scheduler.start(paused=True)
    try:
        dispatch = jobs.scheduler.get_job("push.dispatch")
        assert dispatch is not None
        assert dispatch.trigger.interval == timedelta(seconds=10)  # a quarter lease
    finally:
        jobs.scheduler.shutdown(wait=False)
