"""The delivery funnel: due prompts become outbox rows in one short transaction; sends happen after commit.

Claims use `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of dispatchers share the work and none
sends a row another holds. A claim carries a lease: a dispatcher that dies between claim and send leaves a row
that another takes once the lease has passed (sent at least once; never twice while a lease is held).

A dispatcher killed mid-batch: rows it recorded are never sent again, rows it had not begun go out once after the
lease. Only the send in hand at the instant it died can go twice: the provider may have taken it, and no provider
can be asked afterwards whether it did (tests/resilience/test_jobs_crash.py); the providers that can collapse a
repeat on the phone are told the prompt id to do it with. A dispatcher asked to stop finishes and records the send
in hand, then gives the rest of its claim back at once: none is left in doubt.

A claim stops sending before its lease runs out, and gives the rest back the same way: once less of the lease is
left than a send may take (`DeliveryPolicy.lease_margin`), a send begun might still be in flight when another
dispatcher may take the row. An outcome is recorded only while the row is still this claim's (status and attempt
count unchanged): a dispatcher whose lease ran out never overwrites what the one that took its row over recorded.

A due prompt is held back, never pushed, when it is inside the patient's quiet hours (a late release after
downtime) or the patient's daily cap is reached: its `deliver_at` moves to where quiet hours end, that night or the
next local day, if its window lasts that long; otherwise it is released (listed, answerable) without a push.
Reminders follow the same two rules.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q
from tortoise.models import Model
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from api.domain.patient.models import Patient
from api.domain.prompt.localtime import local_date, parse_hhmm, quiet_hours_end, resolve
from api.domain.prompt.models import OPEN_STATUSES, Prompt, PromptStatus
from api.domain.push.models import Device, MessageStatus, ProviderName, PushMessage
from api.domain.push.providers.base import Outcome, PushProvider, SendResult
from api.domain.push.providers.base import PushMessage as Payload

log = logging.getLogger("interlude.push")

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class DeliveryPolicy:
    late_after: timedelta = timedelta(minutes=15)
    daily_cap: int = 4  # pushes per patient per local day, reminders included
    lease: timedelta = timedelta(minutes=2)
    max_attempts: int = 6
    backoff: timedelta = timedelta(seconds=30)
    max_backoff: timedelta = timedelta(hours=1)
    batch: int = 200
    jitter: Callable[[], float] = field(default=random.random, compare=False)
    # Asked before each send; true once the process is shutting down (the jobs clock sets it).
    stopping: Callable[[], bool] = field(default=lambda: False, compare=False)
    # No send starts once less than this is left of the claim's lease: more than one send may take (a provider's
    # 10-second timeouts; FCM may fetch a token and post twice), so the last send ends while the lease holds.
    lease_margin: timedelta = timedelta(seconds=30)
    # Seconds on a clock that only moves forward, asked before each send: how much of the lease is gone.
    monotonic: Callable[[], float] = field(default=time.monotonic, compare=False)

    @property
    def send_window(self) -> timedelta:
        """How long after its claim a dispatcher may start sends: the lease less the margin. A lease under four
        margins keeps a quarter of itself back instead; with the whole margin, a short one would send nothing."""
        return max(self.lease - self.lease_margin, self.lease * 3 / 4)


@dataclass
class FunnelReport:
    released: int = 0
    late: int = 0
    deferred: int = 0
    reminders: int = 0
    queued: int = 0


@dataclass
class DeliveryReport:
    claimed: int = 0
    accepted: int = 0
    retried: int = 0
    failed: int = 0
    dead_tokens: int = 0
    dropped: int = 0
    returned: int = 0  # claimed, not sent, given back: the dispatcher is stopping, or the lease is running out
    lapsed: int = 0  # outcomes not recorded: by then the row was another dispatcher's, whose outcome counts
    errors: dict[str, int] = field(default_factory=dict)

    def count(self, status: MessageStatus) -> None:
        """One recorded outcome."""
        if status is MessageStatus.ACCEPTED:
            self.accepted += 1
        elif status is MessageStatus.PENDING:
            self.retried += 1
        elif status is MessageStatus.DEAD_TOKEN:
            self.dead_tokens += 1
        elif status is MessageStatus.DROPPED:
            self.dropped += 1
        else:
            self.failed += 1


async def release_due(policy: DeliveryPolicy, *, now: datetime) -> FunnelReport:
    """Prompts whose delivery time has come become SENT, with one outbox row per enabled device."""
    report = FunnelReport()
    async with in_transaction() as conn:
        ready = Prompt.filter(status=PromptStatus.SCHEDULED, deliver_at__lte=now, expires_at__gt=now)
        due = await _lock_batch(ready, "deliver_at", policy, conn)
        if not due:
            return report
        targets = await _Targets.load([p.patient_id for p in due], now, conn)
        outbox: list[PushMessage] = []
        for prompt in due:
            patient = targets.patients[prompt.patient_id]
            devices = targets.enabled(patient) if prompt.push else []
            # Late is measured against the planned time, also when a hold delays the release further.
            prompt.late = prompt.late or now - prompt.deliver_at > policy.late_after
            hold = targets.hold(patient, now, policy.daily_cap, quiet_hours=prompt.respects_quiet_hours)
            if devices and hold is not None:
                if hold < prompt.expires_at:
                    prompt.deliver_at, prompt.updated_at = hold, now
                    await prompt.save(using_db=conn, update_fields=["deliver_at", "late", "updated_at"])
                    report.deferred += 1
                    continue
                devices = []  # the window closes first: listed and answerable, but not pushed
            prompt.status, prompt.sent_at, prompt.updated_at = PromptStatus.SENT, now, now
            prompt.next_reminder_at = _reminder_at(prompt, 0, now)
            await prompt.save(using_db=conn)
            report.released += 1
            report.late += prompt.late
            if devices:
                outbox += _messages(prompt, devices, 0, now)
                targets.count_send(patient.id, now)
        await PushMessage.bulk_create(outbox, using_db=conn)
        report.queued = len(outbox)
    return report


async def queue_reminders(policy: DeliveryPolicy, *, now: datetime) -> FunnelReport:
    """Reminders go only while the prompt is unanswered and open, and respect quiet hours and the daily cap."""
    report = FunnelReport()
    async with in_transaction() as conn:
        ready = Prompt.filter(status__in=OPEN_STATUSES, next_reminder_at__lte=now, expires_at__gt=now)
        due = await _lock_batch(ready, "next_reminder_at", policy, conn)
        if not due:
            return report
        targets = await _Targets.load([p.patient_id for p in due], now, conn)
        outbox: list[PushMessage] = []
        for prompt in due:
            patient = targets.patients[prompt.patient_id]
            sequence = prompt.reminders_sent + 1
            devices = targets.enabled(patient) if prompt.push else []
            hold = targets.hold(patient, now, policy.daily_cap, quiet_hours=prompt.respects_quiet_hours)
            if devices and hold is not None:
                # Waits, like a first push would; dropped (with any later one) if the window closes first.
                prompt.next_reminder_at = hold if hold < prompt.expires_at else None
            else:
                if devices:
                    outbox += _messages(prompt, devices, sequence, now)
                    targets.count_send(patient.id, now)
                    report.reminders += 1
                prompt.reminders_sent = sequence
                prompt.next_reminder_at = _reminder_at(prompt, sequence, now)
            prompt.updated_at = now
            await prompt.save(using_db=conn, update_fields=["reminders_sent", "next_reminder_at", "updated_at"])
        await PushMessage.bulk_create(outbox, using_db=conn)
        report.queued = len(outbox)
    return report


async def deliver(
    providers: Mapping[ProviderName, PushProvider], policy: DeliveryPolicy, *, now: datetime
) -> DeliveryReport:
    """Claim due outbox rows, commit, then send each and record what the provider said. Asked to stop, or with
    too little of its lease left for another send, it gives back the rows it has not sent."""
    report = DeliveryReport()
    # Read before the claim: the lease is counted from no later than this.
    claimed_at = policy.monotonic()
    claimed = await _claim(policy, now)
    report.claimed = len(claimed)
    if not claimed:
        return report
    devices = {d.id: d for d in await Device.filter(id__in=list({m.device_id for m in claimed}))}
    prompts = {p.id: p for p in await Prompt.filter(id__in=list({m.prompt_id for m in claimed}))}
    window = policy.send_window.total_seconds()
    for index, message in enumerate(claimed):
        stopping = policy.stopping()
        if stopping or policy.monotonic() - claimed_at >= window:
            report.returned = await _give_back(claimed[index:], now)
            if not stopping:
                # The provider is slow or the batch too large for the lease: the rest goes in the next pass.
                log.warning("push.lease_running_out", extra={"handled": index, "returned": report.returned})
            break
        device, prompt = devices[message.device_id], prompts[message.prompt_id]
        await _send_one(message, device, prompt, providers=providers, policy=policy, now=now, report=report)
    return report


async def _claim(policy: DeliveryPolicy, now: datetime) -> list[PushMessage]:
    ready = Q(status=MessageStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=MessageStatus.CLAIMED, lease_until__lte=now
    )
    async with in_transaction() as conn:
        rows = await _lock_batch(PushMessage.filter(ready), "next_attempt_at", policy, conn)
        if rows:
            # One UPDATE for the batch (a bulk_update built a 1,600-parameter CASE statement per claim).
            await (
                PushMessage.filter(id__in=[r.id for r in rows])
                .using_db(conn)
                .update(
                    status=MessageStatus.CLAIMED,
                    lease_until=now + policy.lease,
                    updated_at=now,
                    attempts=F("attempts") + 1,
                )
            )
        for row in rows:
            row.status, row.lease_until, row.updated_at = MessageStatus.CLAIMED, now + policy.lease, now
            row.attempts += 1
    return list(rows)


async def _give_back(messages: Sequence[PushMessage], now: datetime) -> int:
    """Claimed rows not sent, due again at once for any dispatcher instead of after the lease; the claim's attempt
    is not counted, as none was made."""
    by_attempts: dict[int, list[UUID]] = {}
    for message in messages:
        by_attempts.setdefault(message.attempts, []).append(message.id)
    returned = 0
    for attempts, ids in by_attempts.items():
        # Still this claim's rows only: a row whose lease ran out may be another dispatcher's by now.
        returned += await PushMessage.filter(id__in=ids, status=MessageStatus.CLAIMED, attempts=attempts).update(
            status=MessageStatus.PENDING, lease_until=None, attempts=attempts - 1, updated_at=now
        )
    return returned


async def _lock_batch(query: QuerySet[M], order: str, policy: DeliveryPolicy, conn: BaseDBAsyncClient) -> list[M]:
    """One batch of due rows, locked for this transaction; rows another dispatcher holds are skipped, not waited for
    (a no-op on SQLite, where one process owns the file)."""
    return await query.order_by(order, "id").limit(policy.batch).select_for_update(skip_locked=True).using_db(conn)


async def _send_one(
    message: PushMessage,
    device: Device,
    prompt: Prompt,
    *,
    providers: Mapping[ProviderName, PushProvider],
    policy: DeliveryPolicy,
    now: datetime,
    report: DeliveryReport,
) -> None:
    # A device whose token another patient has since registered is theirs now: never send them our prompt.
    gone = device.disabled_at is not None or device.patient_id != prompt.patient_id
    if prompt.status not in OPEN_STATUSES or prompt.expires_at <= now or gone:
        await _record(message, MessageStatus.DROPPED, {"lease_until": None, "updated_at": now}, report)
        return
    result = await _send(providers, device, prompt, now)
    if result.error_class:
        report.errors[result.error_class] = report.errors.get(result.error_class, 0) + 1
    if result.outcome is Outcome.DEAD_TOKEN:
        # A fact about the token, whoever holds the row by now.
        await Device.filter(id=device.id, disabled_at=None).update(disabled_at=now, disabled_reason=result.error_class)
        # The rest of this batch for the device is dropped, not sent to a token known to be dead.
        device.disabled_at, device.disabled_reason = now, result.error_class
    recorded = await _record(message, *_outcome(message, result, policy, now), report)
    log.info(
        "push.sent",
        extra={
            "message_id": str(message.id),
            "prompt_id": str(prompt.id),
            "outcome": result.outcome.value,
            "error_class": result.error_class,
            "attempt": message.attempts,
            "recorded": recorded,
        },
    )


async def _send(
    providers: Mapping[ProviderName, PushProvider], device: Device, prompt: Prompt, now: datetime
) -> SendResult:
    """The provider's answer. Providers never raise by contract; one that does (a bug) must not stop the batch
    and leave the rest of it claimed until the lease ends."""
    provider = providers.get(device.provider)
    if provider is None:
        return SendResult(Outcome.FAILED, error_class="provider.unconfigured")
    try:
        return await provider.send(device.token, Payload(prompt_id=prompt.id), now=now)
    except Exception as exc:  # any bug in one send is counted and retried, never fatal to the batch
        # The type only: a provider's message may quote the token or the endpoint.
        log.warning("push.provider_error", extra={"provider": device.provider.value, "error": type(exc).__name__})
        return SendResult(Outcome.RETRY, error_class="provider.exception")


def _outcome(
    message: PushMessage, result: SendResult, policy: DeliveryPolicy, now: datetime
) -> tuple[MessageStatus, dict[str, object]]:
    """What the row becomes after the provider's answer."""
    changes: dict[str, object] = {"lease_until": None, "error_class": result.error_class, "updated_at": now}
    if result.outcome is Outcome.RETRY and message.attempts < policy.max_attempts:
        changes["next_attempt_at"] = now + _backoff(policy, message.attempts, result.retry_after)
        return MessageStatus.PENDING, changes
    changes["provider_message_id"] = result.provider_message_id
    if result.outcome is Outcome.ACCEPTED:
        return MessageStatus.ACCEPTED, changes | {"sent_at": now}
    if result.outcome is Outcome.DEAD_TOKEN:
        return MessageStatus.DEAD_TOKEN, changes
    return MessageStatus.FAILED, changes


async def _record(
    message: PushMessage, status: MessageStatus, changes: dict[str, object], report: DeliveryReport
) -> bool:
    """Writes the outcome only while the row is still this claim's, and counts it; False when it was not."""
    # The attempt count is the claim's token: a dispatcher that took the row over once our lease ran out counted
    # one more, and one that gave it back counted one less and left the row pending.
    ours = PushMessage.filter(id=message.id, status=MessageStatus.CLAIMED, attempts=message.attempts)
    if not await ours.update(status=status, **changes):
        report.lapsed += 1
        log.warning("push.lease_lost", extra={"message_id": str(message.id), "attempt": message.attempts})
        return False
    report.count(status)
    return True


def _backoff(policy: DeliveryPolicy, attempts: int, retry_after: float | None) -> timedelta:
    """Exponential with jitter (half to all of the step), never sooner than the provider's Retry-After."""
    step: timedelta = min(policy.backoff * (2 ** (attempts - 1)), policy.max_backoff)
    delay: timedelta = step * (0.5 + policy.jitter() / 2)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def _messages(prompt: Prompt, devices: Sequence[Device], sequence: int, now: datetime) -> list[PushMessage]:
    return [
        PushMessage(
            clinic_id=prompt.clinic_id,
            prompt_id=prompt.id,
            device_id=d.id,
            sequence=sequence,
            status=MessageStatus.PENDING,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        for d in devices
    ]


def _reminder_at(prompt: Prompt, sent_reminders: int, now: datetime) -> datetime | None:
    """Reminders count from delivery; None when there are no more. A reminder that waited (quiet hours, the
    daily cap) keeps its distance to the next one: two never go out back to back."""
    offsets = prompt.reminder_minutes
    if prompt.sent_at is None or sent_reminders >= len(offsets):
        return None
    at = prompt.sent_at + timedelta(minutes=offsets[sent_reminders])
    if sent_reminders:
        at = max(at, now + timedelta(minutes=offsets[sent_reminders] - offsets[sent_reminders - 1]))
    return at if at < prompt.expires_at else None


class _Targets:
    """Patients, enabled devices and today's send counts for one batch, loaded in three queries."""

    def __init__(
        self, patients: dict[UUID, Patient], devices: dict[UUID, list[Device]], sends: dict[UUID, list[datetime]]
    ):
        self.patients = patients
        self.devices = devices
        self.sends = sends

    @classmethod
    async def load(cls, patient_ids: list[UUID], now: datetime, conn: BaseDBAsyncClient) -> _Targets:
        ids = list(set(patient_ids))
        patients = {p.id: p for p in await Patient.filter(id__in=ids).using_db(conn)}
        devices: dict[UUID, list[Device]] = {}
        for d in await Device.filter(patient_id__in=ids, disabled_at=None).order_by("created_at").using_db(conn):
            devices.setdefault(d.patient_id, []).append(d)
        sends: dict[UUID, list[datetime]] = {}
        # A local day is at most 26 hours long; count distinct sends (one per prompt and sequence).
        recent = await (
            PushMessage.filter(prompt__patient_id__in=ids, created_at__gte=now - timedelta(hours=26))
            .using_db(conn)
            .values_list("prompt__patient_id", "prompt_id", "sequence", "created_at")
        )
        seen: set[tuple[UUID, int]] = set()
        for patient_id, prompt_id, sequence, created_at in recent:
            if (prompt_id, sequence) not in seen:
                seen.add((prompt_id, sequence))
                sends.setdefault(patient_id, []).append(created_at)
        return cls(patients, devices, sends)

    def enabled(self, patient: Patient) -> list[Device]:
        """Where a push to this patient goes: nowhere with notifications off."""
        return self.devices.get(patient.id, []) if patient.notifications_enabled else []

    def hold(self, patient: Patient, now: datetime, cap: int, *, quiet_hours: bool) -> datetime | None:
        """Until when a push to this patient must wait, or None if it may go now."""
        if quiet_hours:
            quiet_end = self.after_quiet_hours(patient, now)
            if quiet_end > now:
                return quiet_end
        return self.next_day_start(patient, now) if self.capped(patient, now, cap) else None

    def capped(self, patient: Patient, now: datetime, cap: int) -> bool:
        zone = ZoneInfo(patient.timezone)
        today = local_date(now, zone)
        return sum(1 for at in self.sends.get(patient.id, []) if local_date(at, zone) == today) >= cap

    def count_send(self, patient_id: UUID, now: datetime) -> None:
        self.sends.setdefault(patient_id, []).append(now)

    def next_day_start(self, patient: Patient, now: datetime) -> datetime:
        zone = ZoneInfo(patient.timezone)
        return resolve(local_date(now, zone) + timedelta(days=1), parse_hhmm(patient.quiet_hours_end), zone)

    def after_quiet_hours(self, patient: Patient, now: datetime) -> datetime:
        zone = ZoneInfo(patient.timezone)
        return quiet_hours_end(now, zone, parse_hhmm(patient.quiet_hours_start), parse_hhmm(patient.quiet_hours_end))
