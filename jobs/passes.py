"""One pass of every periodic job at a given clock; the scheduler and `interlude jobs tick` both call these."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from api.domain.account.housekeeping import purge_expired_credentials
from api.domain.actor import Actor
from api.domain.alert.service import AlertService
from api.domain.alert.timed import clinics_to_check
from api.domain.patient.erasure import purge
from api.domain.prompt.scheduling import SchedulingPolicy, plan_all
from api.domain.prompt.service import expire_due
from api.domain.push import outbox, receipts
from api.domain.push.models import ProviderName
from api.domain.push.providers.base import PushProvider

log = logging.getLogger("interlude.jobs")

Counts = dict[str, int]


@dataclass(frozen=True)
class JobConfig:
    throttle_window: timedelta
    scheduling: SchedulingPolicy
    delivery: outbox.DeliveryPolicy
    providers: Mapping[ProviderName, PushProvider]
    alerts: AlertService


async def expire_prompts(config: JobConfig, now: datetime) -> Counts:
    return _logged("prompt.expire", {"expired": await expire_due(now=now)})


async def plan_prompts(config: JobConfig, now: datetime) -> Counts:
    report = await plan_all(config.scheduling, now=now)
    counts = {k: v for k, v in asdict(report).items() if isinstance(v, int)}
    return _logged("prompt.plan", counts)


async def dispatch(config: JobConfig, now: datetime) -> Counts:
    """Release due prompts, queue reminders, then send what the outbox holds."""
    released = await outbox.release_due(config.delivery, now=now)
    reminded = await outbox.queue_reminders(config.delivery, now=now)
    delivered = await outbox.deliver(config.providers, config.delivery, now=now)
    counts = {
        "released": released.released,
        "late": released.late,
        "deferred": released.deferred,
        "reminders": reminded.reminders,
        "queued": released.queued + reminded.queued,
        **{k: v for k, v in asdict(delivered).items() if isinstance(v, int)},
    }
    return _logged("push.dispatch", counts)


async def push_receipts(config: JobConfig, now: datetime) -> Counts:
    """Expo receipts: a ticket is not a delivery."""
    return _logged("push.receipts", asdict(await receipts.check_receipts(config.providers, now=now)))


async def purge_credentials(config: JobConfig, now: datetime) -> Counts:
    purged = await purge_expired_credentials(now=now, throttle_window=config.throttle_window)
    return _logged("account.purge_expired_credentials", asdict(purged))


async def alert_time_rules(config: JobConfig, now: datetime) -> Counts:
    """Missed diaries, clinic by clinic, each as that clinic's system actor."""
    counts = {"clinics": 0, "raised": 0, "resolved": 0}
    for clinic_id in await clinics_to_check():
        report = await config.alerts.run_time_rules(Actor.system(clinic_id), now=now)
        counts["clinics"] += 1
        counts["raised"] += len(report.raised)
        counts["resolved"] += report.resolved
    return _logged("alert.time_rules", counts)


async def escalate_alerts(config: JobConfig, now: datetime) -> Counts:
    return _logged("alert.escalate", {"escalated": len(await config.alerts.escalate(now=now))})


async def purge_erased(config: JobConfig, now: datetime) -> Counts:
    """Erased patients whose legal-retention hold has ended lose their clinical record; prompts planned after an
    erasure are cancelled or deleted."""
    return _logged("erasure.purge", asdict(await purge(now=now)))


async def tick(config: JobConfig, now: datetime) -> dict[str, Counts]:
    """Every pass once, at `now`, in the order a real clock would run them."""
    return {
        "prompt.expire": await expire_prompts(config, now),
        "prompt.plan": await plan_prompts(config, now),
        "push.dispatch": await dispatch(config, now),
        "push.receipts": await push_receipts(config, now),
        "account.purge_expired_credentials": await purge_credentials(config, now),
        "alert.time_rules": await alert_time_rules(config, now),
        "alert.escalate": await escalate_alerts(config, now),
        "erasure.purge": await purge_erased(config, now),
    }


def _logged(job: str, counts: Counts) -> Counts:
    log.info(job, extra={"job": job, "counts": counts})
    return counts
