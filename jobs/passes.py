"""One pass of every periodic job at a given clock; the scheduler and `interlude jobs tick` both call it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from api.domain.account.housekeeping import purge_expired_credentials

log = logging.getLogger("interlude.jobs")


@dataclass(frozen=True)
class JobConfig:
    throttle_window: timedelta


async def purge_credentials(config: JobConfig, now: datetime) -> dict[str, int]:
    purged = await purge_expired_credentials(now=now, throttle_window=config.throttle_window)
    result = {"refresh_tokens": purged.refresh_tokens, "throttle_buckets": purged.throttle_buckets}
    log.info("account.purge_expired_credentials", extra=result)
    return result


async def tick(config: JobConfig, now: datetime) -> dict[str, dict[str, int]]:
    """Every pass once, in order, at `now`."""
    return {"account.purge_expired_credentials": await purge_credentials(config, now)}
