"""The shared failure counter: concurrent failures all count, locks expire and back off (per account, never per
address), a success resets; lock lengths stay within their cap however many locks come."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from api.domain.account.housekeeping import purge_expired_credentials
from api.domain.account.models import ThrottleBucket
from api.domain.account.throttle import Throttle, ThrottleRule
from api.domain.errors import RateLimited, Unauthenticated
from api.domain.services import Services
from api.settings import Settings
from tests.conftest import Database
from tests.factories import PASSWORD, Factory

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


# --- backoff ----------------------------------------------------------------------------------------------

BACKOFF = ThrottleRule(
    "backoff", max_failures=3, window=timedelta(minutes=15), lock=timedelta(minutes=15), max_lock=timedelta(hours=1)
)


async def _lock(throttle: Throttle, key: str, at: datetime) -> datetime:
    """Fails `key` until it locks at `at`; returns when the lock ends."""
    for _ in range(BACKOFF.max_failures):
        await throttle.fail(BACKOFF, key, at)
    bucket = await ThrottleBucket.get(key=key)
    assert bucket.locked_until is not None
    return bucket.locked_until


async def test_each_further_lock_doubles_up_to_the_cap(db: Database, now: datetime) -> None:
    throttle, key = Throttle(), BACKOFF.key("someone@example.test")
    lengths = []
    at = now
    for _ in range(5):
        ends = await _lock(throttle, key, at)
        lengths.append(ends - at)
        at = ends

    assert lengths == [timedelta(minutes=m) for m in (15, 30, 60, 60, 60)]
    assert (await ThrottleBucket.get(key=key)).lock_count == 5


async def test_a_backed_off_lock_refuses_until_it_ends(db: Database, now: datetime) -> None:
    throttle, key = Throttle(), BACKOFF.key("a")
    first_end = await _lock(throttle, key, now)
    second_end = await _lock(throttle, key, first_end)

    with pytest.raises(RateLimited):
        await throttle.check([key], second_end - timedelta(seconds=1))
    await throttle.check([key], second_end)
    assert second_end - first_end == timedelta(minutes=30)


async def test_a_success_resets_the_backoff(db: Database, now: datetime) -> None:
    throttle, key = Throttle(), BACKOFF.key("a")
    ends = await _lock(throttle, key, now)
    ends = await _lock(throttle, key, ends)

    await throttle.reset(key)

    assert await _lock(throttle, key, ends) - ends == BACKOFF.lock


async def test_a_key_quiet_for_the_longest_lock_starts_again_at_the_first_length(db: Database, now: datetime) -> None:
    throttle, key = Throttle(), BACKOFF.key("a")
    ends = await _lock(throttle, key, now)
    ends = await _lock(throttle, key, ends)
    just_before = ends + BACKOFF.memory - timedelta(seconds=1)

    third_ends = await _lock(throttle, key, just_before)
    quiet = third_ends + BACKOFF.memory

    assert third_ends - just_before == timedelta(minutes=60)
    assert await _lock(throttle, key, quiet) - quiet == BACKOFF.lock


def test_without_a_cap_every_lock_lasts_the_same_and_huge_counts_stay_capped() -> None:
    assert [RULE.lock_for(n) for n in (0, 1, 7)] == [RULE.lock] * 3
    assert BACKOFF.lock_for(10_000) == BACKOFF.max_lock
    assert BACKOFF.lock_for(0) == BACKOFF.lock


@pytest.mark.parametrize(
    ("lock", "cap"),
    [(timedelta(days=1), timedelta(days=1)), (timedelta(hours=6), timedelta(days=1)), (timedelta(seconds=1),) * 2],
    ids=["day-day", "six-hours-day", "second-second"],
)
def test_lock_lengths_never_overflow_whatever_the_count(lock: timedelta, cap: timedelta) -> None:
    rule = ThrottleRule("big", max_failures=1, window=timedelta(minutes=15), lock=lock, max_lock=cap)

    assert {rule.lock_for(n) for n in (*range(70), 10**6)} <= {lock * (1 << n) for n in range(18)}
    assert rule.lock_for(10**6) == cap


DAY = ThrottleRule(
    "day", max_failures=2, window=timedelta(minutes=15), lock=timedelta(days=1), max_lock=timedelta(days=1)
)


async def test_forty_locks_in_a_row_at_a_day_each_are_all_recorded(db: Database, now: datetime) -> None:
    """A doubled timedelta overflows after some 30 locks: each further failure would then raise instead of counting,
    and the key would be open to unlimited guessing."""
    throttle, key = Throttle(), DAY.key("someone@example.test")
    at = now
    for _ in range(40):
        for _ in range(DAY.max_failures):
            await throttle.fail(DAY, key, at)
        bucket = await ThrottleBucket.get(key=key)
        assert bucket.locked_until == at + DAY.lock
        with pytest.raises(RateLimited):
            await throttle.check([key], bucket.locked_until - timedelta(seconds=1))
        at = bucket.locked_until

    assert (await ThrottleBucket.get(key=key)).lock_count == 40


def test_a_first_lock_longer_than_the_cap_is_refused_by_the_settings() -> None:
    with pytest.raises(ValidationError, match="LOGIN_LOCK_MINUTES"):
        Settings(login_lock_minutes=24 * 60 + 1)
    with pytest.raises(ValidationError, match="LOGIN_LOCK_MINUTES"):
        Settings(login_lock_minutes=90, login_lock_max_minutes=60)
    assert Settings(login_lock_minutes=60, login_lock_max_minutes=60).login_lock_minutes == 60


async def test_an_address_lock_never_backs_off(factory: Factory, services: Services, now: datetime) -> None:
    """Everyone behind a clinic's NAT shares its address: its locks stay at the first length, however many; only an
    account's locks back off."""
    staff = await factory.staff(await factory.clinic())
    accounts = services.accounts
    rule, ip = accounts.policy.per_address, "198.51.100.7"
    lengths, at = [], now
    for round_ in range(3):
        for i in range(rule.max_failures):
            with pytest.raises(Unauthenticated):
                await accounts.login(f"typo{round_}-{i}@clinic.test", "a mistyped password", ip=ip, now=at)
        bucket = await ThrottleBucket.get(key=rule.key(ip))
        assert bucket.locked_until is not None
        lengths.append(bucket.locked_until - at)
        at = bucket.locked_until
        # A colleague behind the same address signs in once the lock ends.
        await accounts.login(staff.email, PASSWORD, ip=ip, now=at)

    assert lengths == [rule.lock] * 3
    assert services.patients.register_rule.lock_for(5) == services.patients.register_rule.lock
    assert accounts.policy.per_account.lock_for(1) == 2 * accounts.policy.per_account.lock


async def test_housekeeping_keeps_a_locked_key_s_count_for_a_day(db: Database, now: datetime) -> None:
    window = timedelta(minutes=15)
    old = now - timedelta(days=3)
    await ThrottleBucket.create(
        key="recent", failures=0, window_started_at=old, locked_until=now - timedelta(hours=2), lock_count=2
    )
    await ThrottleBucket.create(
        key="forgotten", failures=0, window_started_at=old, locked_until=now - timedelta(days=2), lock_count=4
    )
    await ThrottleBucket.create(key="never-locked", failures=1, window_started_at=old, lock_count=0)

    purged = await purge_expired_credentials(now=now, throttle_window=window)

    assert purged.throttle_buckets == 2
    assert [b.key for b in await ThrottleBucket.all()] == ["recent"]
