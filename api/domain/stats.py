"""Counts over the whole database for operators (`/metrics`): statuses, error classes and ages, never an id.

Read at scrape time, so that they are right whichever process (API or jobs) did the work. Each is one aggregate
over an indexed status column; nothing here reads health data.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from tortoise.expressions import Q
from tortoise.functions import Count

from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.push.models import MessageStatus, PushMessage

# Error classes come from providers' answers ("fcm.UNREGISTERED", "apns.410.Unregistered", "http.503"): a label
# value only when it has that shape, and only for the most frequent few, so that a provider inventing codes cannot
# grow the number of series without bound.
_ERROR_CLASS = re.compile(r"^[A-Za-z0-9_.]{1,64}$")
MAX_ERROR_CLASSES = 30
OTHER = "other"


@dataclass(frozen=True)
class OutboxStats:
    by_status: dict[MessageStatus, int]
    # Messages whose latest attempt failed (retrying, failed or dead token), by the provider's error class.
    errors: dict[str, int] = field(default_factory=dict)
    # The next attempt time of the message that has waited longest past it; None when nothing is overdue.
    oldest_due: datetime | None = None

    def lag_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.oldest_due).total_seconds()) if self.oldest_due is not None else 0.0


@dataclass(frozen=True)
class Snapshot:
    prompts: dict[PromptStatus, int]
    outbox: OutboxStats


async def snapshot(*, now: datetime) -> Snapshot:
    return Snapshot(prompts=await prompts_by_status(), outbox=await outbox(now=now))


async def prompts_by_status() -> dict[PromptStatus, int]:
    rows = await Prompt.annotate(n=Count("id")).group_by("status").values_list("status", "n")
    found = {PromptStatus(status): n for status, n in rows}
    return {status: found.get(status, 0) for status in PromptStatus}


async def outbox(*, now: datetime) -> OutboxStats:
    rows = await (
        PushMessage.annotate(n=Count("id")).group_by("status", "error_class").values_list("status", "error_class", "n")
    )
    by_status: Counter[MessageStatus] = Counter()
    errors: Counter[str] = Counter()
    for status, error_class, n in rows:
        by_status[MessageStatus(status)] += n
        if error_class:
            errors[error_class if _ERROR_CLASS.match(error_class) else OTHER] += n
    return OutboxStats(
        by_status={status: by_status[status] for status in MessageStatus},
        errors=_bounded(errors),
        oldest_due=await _oldest_due(now),
    )


async def _oldest_due(now: datetime) -> datetime | None:
    """What a dispatcher would claim next (see `outbox._claim`): a due pending message, or a claimed one whose
    lease has run out (its dispatcher died). Each is the head of an index on (status, …)."""
    pending = Q(status=MessageStatus.PENDING, next_attempt_at__lte=now)
    abandoned = Q(status=MessageStatus.CLAIMED, lease_until__lte=now)
    heads: list[datetime] = []
    for ready in (pending, abandoned):
        head = await PushMessage.filter(ready).order_by("next_attempt_at").only("id", "next_attempt_at").first()
        if head is not None:
            heads.append(head.next_attempt_at)
    return min(heads, default=None)


def _bounded(errors: Counter[str]) -> dict[str, int]:
    other = errors.pop(OTHER, 0)
    # Ties broken by name: the same rows give the same series on every scrape.
    ranked = sorted(errors.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:MAX_ERROR_CLASSES])
    other += sum(n for _, n in ranked[MAX_ERROR_CLASSES:])
    return {**kept, OTHER: other} if other else kept
