"""Failure counters shared by all replicas: lock a key after too many failures inside a window.

Locks of a rule with a `max_lock` back off: each further lock of the same key lasts twice as long as the one before
(`lock`, 2×, 4×, …, at most `max_lock`), until a success resets the key or the key has been quiet for as long as the
longest lock. Only per-account keys back off; a client address may be a clinic's NAT, shared by everyone behind it,
and a backed-off address lock would shut them all out for a day (api/container.py).
"""

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
    # The longest a backed-off lock may last; None: every lock lasts `lock`.
    max_lock: timedelta | None = None

    def lock_for(self, previous_locks: int) -> timedelta:
        """How long the next lock lasts after `previous_locks` locks in a row."""
        if self.max_lock is None:
            return self.lock
        # In whole seconds, with the exponent stopped where doubling passes the cap: a timedelta doubled 30-odd
        # times overflows, and a lock that fails to be recorded would leave the key open to unlimited guessing.
        lock, cap = int(self.lock.total_seconds()), int(self.max_lock.total_seconds())
        doubled = lock << min(previous_locks, cap.bit_length())
        return timedelta(seconds=max(lock, min(doubled, cap)))

    @property
    def memory(self) -> timedelta:
        """How long after its last lock ended a key still backs off."""
        return max(self.max_lock or self.lock, self.window)

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
                bucket = ThrottleBucket(key=key, failures=0, window_started_at=now, lock_count=0)
                created = True
            else:
                created = False
                if bucket.window_started_at + rule.window <= now:
                    bucket.failures, bucket.window_started_at = 0, now
                if bucket.locked_until is not None and bucket.locked_until + rule.memory <= now:
                    bucket.lock_count = 0
            bucket.failures += 1
            if bucket.failures >= rule.max_failures:
                bucket.locked_until = now + rule.lock_for(bucket.lock_count)
                bucket.lock_count += 1
                bucket.failures, bucket.window_started_at = 0, now
            await bucket.save(using_db=conn, force_create=created)

    async def reset(self, key: str) -> None:
        await ThrottleBucket.filter(key=key).delete()
