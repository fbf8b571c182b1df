"""The housekeeping pass removes only credentials that can no longer be used."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import uuid4

from api.container import build_job_config
from api.domain.account.models import RefreshToken, ThrottleBucket
from api.domain.account.tokens import sha256_hex
from jobs.passes import tick
from tests.conftest import make_settings
from tests.factories import Factory

CONFIG = build_job_config(make_settings())


async def test_tick_purges_long_expired_refresh_tokens_only(factory: Factory, now: datetime) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)

    async def token(expires_at: datetime) -> RefreshToken:
        return await RefreshToken.create(
            account_id=staff.account.id,
            family_id=uuid4(),
            token_hash=sha256_hex(str(uuid4())),
            created_at=expires_at - timedelta(days=30),
            expires_at=expires_at,
        )

    long_gone = await token(now - timedelta(days=8))
    recently_expired = await token(now - timedelta(days=1))  # kept: a reuse attempt must still revoke its family
    live = await token(now + timedelta(days=10))

    result = await tick(CONFIG, now)

    assert result["account.purge_expired_credentials"]["refresh_tokens"] == 1
    remaining = {t.id for t in await RefreshToken.all()}
    assert long_gone.id not in remaining
    assert {recently_expired.id, live.id} <= remaining


async def test_tick_purges_idle_throttle_buckets_but_keeps_locks_and_open_windows(
    factory: Factory, now: datetime
) -> None:
    await ThrottleBucket.create(key="idle", failures=2, window_started_at=now - timedelta(hours=1))
    await ThrottleBucket.create(key="counting", failures=2, window_started_at=now - timedelta(minutes=5))
    await ThrottleBucket.create(
        key="locked", failures=0, window_started_at=now - timedelta(hours=1), locked_until=now + timedelta(minutes=5)
    )
    await ThrottleBucket.create(
        key="lock-ended",
        failures=0,
        window_started_at=now - timedelta(hours=1),
        locked_until=now - timedelta(minutes=1),
    )

    result = await tick(CONFIG, now)

    assert result["account.purge_expired_credentials"]["throttle_buckets"] == 2
    assert {bucket.key for bucket in await ThrottleBucket.all()} == {"counting", "locked"}


async def test_tick_twice_is_harmless(factory: Factory, now: datetime) -> None:
    await ThrottleBucket.create(key="idle", failures=1, window_started_at=now - timedelta(hours=2))
    first = await tick(CONFIG, now)
    second = await tick(CONFIG, now)
    assert first["account.purge_expired_credentials"]["throttle_buckets"] == 1
    assert second["account.purge_expired_credentials"] == {"refresh_tokens": 0, "throttle_buckets": 0}
