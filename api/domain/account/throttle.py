"""Failure counters shared by all replicas: lock a key after too many failures inside a window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.domain.account.models import ThrottleBucket
from api.domain.account.tokens import sha256_hex
from api.domain.errors import RateLimited


@dataclass(frozen=True)
class ThrottleRule:
    prefix: str
    max_failures: int
    window: timedelta
    lock: timedelta

    def key(self, value: str) -> str:
        # Hashed so that neither emails nor addresses sit in this table in the clear.
        return f"{self.prefix}:{sha256_hex(value.lower())[:40]}"


class Throttle:
    async def check(self, keys: list[str], now: datetime) -> None:
        """Refuse when any key is locked; the message is the same whether or not an account exists."""
        locked = await ThrottleBucket.filter(key__in=keys, locked_until__gt=now).exists()
        if locked:
            raise RateLimited("too many attempts; try again later")

    async def fail(self, rule: ThrottleRule, key: str, now: datetime) -> None:
        try:
            await self._fail_once(rule, key, now)
        except IntegrityError:
            # Another replica created the bucket between our read and insert; count on its row.
            await self._fail_once(rule, key, now)

    async def _fail_once(self, rule: ThrottleRule, key: str, now: datetime) -> None:
        async with in_transaction() as conn:
            bucket = await ThrottleBucket.filter(key=key).select_for_update().using_db(conn).first()
            if bucket is None:
                bucket = ThrottleBucket(key=key, failures=0, window_started_at=now)
                created = True
            else:
                created = False
                if bucket.window_started_at + rule.window <= now:
                    bucket.failures, bucket.window_started_at = 0, now
            bucket.failures += 1
            if bucket.failures >= rule.max_failures:
                bucket.locked_until = now + rule.lock
                bucket.failures, bucket.window_started_at = 0, now
            await bucket.save(using_db=conn, force_create=created)

    async def reset(self, key: str) -> None:
        await ThrottleBucket.filter(key=key).delete()
