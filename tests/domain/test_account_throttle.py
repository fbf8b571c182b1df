"""The shared failure counter: concurrent failures all count, locks expire, a success resets."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from api.domain.account.models import ThrottleBucket
from api.domain.account.throttle import Throttle, ThrottleRule
from api.domain.errors import RateLimited
from tests.conftest import Database

RULE = ThrottleRule("unit", max_failures=5, window=timedelta(minutes=15), lock=timedelta(minutes=15))


async def test_concurrent_failures_are_all_counted(db: Database, now: datetime) -> None:
    throttle, key = Throttle(), RULE.key("Someone@Example.test")

    await asyncio.gather(*(throttle.fail(RULE, key, now) for _ in range(RULE.max_failures)))

    with pytest.raises(RateLimited):
        await throttle.check([key], now)
    bucket = await ThrottleBucket.get(key=key)
    assert bucket.locked_until == now + RULE.lock


async def test_one_failure_short_does_not_lock(db: Database, now: datetime) -> None:
    throttle, key = Throttle(), RULE.key("someone@example.test")

    await asyncio.gather(*(throttle.fail(RULE, key, now) for _ in range(RULE.max_failures - 1)))

    await throttle.check([key], now)
    assert (await ThrottleBucket.get(key=key)).failures == RULE.max_failures - 1


async def test_a_lock_on_any_key_refuses_and_ends_on_time(db: Database, now: datetime) -> None:
    throttle = Throttle()
    locked, free = RULE.key("a"), RULE.key("b")
    for _ in range(RULE.max_failures):
        await throttle.fail(RULE, locked, now)

    with pytest.raises(RateLimited):
        await throttle.check([free, locked], now + RULE.lock - timedelta(seconds=1))
    await throttle.check([free, locked], now + RULE.lock)


async def test_reset_forgets_the_failures(db: Database, now: datetime) -> None:
    throttle, key = Throttle(), RULE.key("a")
    for _ in range(RULE.max_failures - 1):
        await throttle.fail(RULE, key, now)

    await throttle.reset(key)
    await throttle.fail(RULE, key, now)

    await throttle.check([key], now)
    assert (await ThrottleBucket.get(key=key)).failures == 1


def test_keys_are_case_insensitive_hashed_and_prefixed() -> None:
    key = RULE.key("Someone@Example.test")

    assert key == RULE.key("someone@example.test")
    assert key.startswith("unit:")
    assert "someone" not in key
    assert len(key) <= 100
