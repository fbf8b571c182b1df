"""Removing credentials that can no longer be used. Nothing here touches health data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import Q

from api.domain.account.models import RefreshToken, ThrottleBucket

# Kept a while after expiry so that a reuse attempt shortly after still finds its family and revokes it.
REFRESH_GRACE = timedelta(days=7)
# A key that has been locked is kept this long after its lock ended, so that its next lock still backs off
# (throttle.py). The default login cap (login_lock_max_minutes) is one day.
LOCK_MEMORY = timedelta(days=1)


@dataclass(frozen=True)
class Purged:
    refresh_tokens: int
    throttle_buckets: int


async def purge_expired_credentials(
    *, now: datetime, throttle_window: timedelta, lock_memory: timedelta = LOCK_MEMORY
) -> Purged:
    tokens = await RefreshToken.filter(expires_at__lt=now - REFRESH_GRACE).delete()
    unlocked = Q(locked_until=None) | Q(locked_until__lt=now)
    forgotten = Q(lock_count=0) | Q(locked_until__lt=now - lock_memory)
    idle = Q(window_started_at__lt=now - throttle_window) & unlocked & forgotten
    buckets = await ThrottleBucket.filter(idle).delete()
    return Purged(refresh_tokens=tokens, throttle_buckets=buckets)
