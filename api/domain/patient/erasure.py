"""Erasure of a patient (GDPR Art. 17) under a legal-retention hold, and the purge that ends the hold.

Who: the patient themself, and an ADMIN of the patient's clinic (for requests that reached the clinic by other
channels), each confirming with their password (and the admin's code, once enabled: `AccountService.confirm_identity`),
so that a stolen access token alone erases no one. Clinicians are FORBIDDEN; another clinic's patient is NOT_FOUND.

At once, in one transaction (nothing half-done on failure):
- the account can never be used again: email replaced by a placeholder that no one can receive mail at, password
  hash replaced by one no password matches, TOTP secret cleared, deactivated; every refresh token deleted; its login
  throttle bucket (keyed by a hash of the email) deleted;
- contact is cut: devices (push tokens) deleted with every push message to them, unsent messages for the patient's
  prompts deleted, unsent prompts cancelled and reminders of sent ones stopped, invites deleted;
- the profile keeps no one's name: display name "Erased patient" + the first 8 hex digits of the id (which staff
  already hold), notification and timing preferences back to the defaults, status ERASED.

The clinical record (diary with its revisions, questionnaire responses, courses and sessions, alerts with their
history, prompts) is kept under a legal-retention hold until `retained_until` = latest clinical date + the
retention period. The latest clinical date is the latest of: diary `recorded_at`, questionnaire `authored_at`,
start of a session that was not cancelled, all at or before `now`; `now` when there is none. While held, the
clinic's staff still read the record under the pseudonym (`access.reachable_patient`); the patient reaches
nothing, and staff write nothing to it (`access.require_not_erased`) but the closing of its alerts. Without a hold
(retention 0), or when the hold has already run out, the record is deleted in the same transaction and `erased_at`
is `now`.

Safety comes first: the record is never deleted while one of its CRITICAL alerts (self-harm, a red-flag symptom) is
unresolved, open or acknowledged. A patient who reports thoughts of self-harm and then erases their account must
not make the alert vanish before a clinician has dealt with it. The erasure itself is never refused for it (the
account, the contact data and the name go at once all the same); the record is held instead: `retained_until` is
the end of the hold, `now` without one, and the purge takes the record at its first pass after the last such alert
is resolved. Until then staff find those alerts in the list, the feed and escalation, acknowledge and resolve them,
and read the record under the pseudonym. Refusing the erasure instead would keep a person's name, email and phone
on file against their express wish for as long as the clinic takes to act; keeping the alert rows alone would leave
staff an alert without the record (the answers that raised it) they need to act on it. Alerts of lower severity go
with the record.

Later: `purge_held_records` (the `erasure.purge` pass, hourly) deletes the held records whose `retained_until` has
come and whose critical alerts are all resolved, sets `erased_at`, and sets the time zone (kept while held: local
days in the record are read in it) to UTC.

The same pass sweeps up prompts planned after the erasure (`purge_late_prompts`). A session booked, an enrolment or
new preferences replan the patient after their own transaction has committed, with the patient they read: an
erasure that committed in between may see prompts created or revived after it. The planner reads the statuses
again right before it writes, which leaves only the instant of its writes; what it still left is cancelled in a held
record (as the erasure cancelled what was unsent) and deleted behind a purge. No push goes out meanwhile: the
erasure deleted the devices and turned notifications off, and neither comes back for an erased patient.

Kept for good: the patient row itself (a tombstone: pseudonym, status, dates), so that ids in the audit trail still
resolve to "erased"; the audit trail, the legal access log: ids, actions, times, request ids and client addresses (the
patient's own among them), no health data and no names. Nothing is logged.

Open sent prompts are left to expire as usual (cancelled means never sent), so adherence in the held record reads as
it would have. The erasure locks the patient's row first, as every write that adds to the record or may raise an
alert does in its own transaction (`access.lock_patient`): a write that got the lock first is held or purged with
the rest, one that waited for it is refused as any call of an erased patient is (NOT_FOUND).

The admin's reason is required, so that an erasure is a deliberate act, but stored nowhere: it is free text and may
hold health data, and there is no column for it. The audit event `patient.erase` records who erased whom and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q, Subquery
from tortoise.models import Model
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from api.domain.account.models import Account, RefreshToken, ThrottleBucket
from api.domain.account.service import AccountService
from api.domain.actor import Actor, Role
from api.domain.alert.models import Alert, AlertEvent
from api.domain.alert.visibility import pending_critical
from api.domain.audit import service as audit
from api.domain.diary.models import DiaryEntry, DiaryEntryRevision
from api.domain.errors import BadInput, Forbidden, NotFound
from api.domain.patient.access import require_patient
from api.domain.patient.models import Invite, Patient, PatientStatus
from api.domain.prompt.models import OPEN_STATUSES, Prompt, PromptStatus
from api.domain.push.models import Device, MessageStatus, PushMessage
from api.domain.questionnaire.models import QuestionnaireResponse
from api.domain.treatment.models import InfusionSession, SessionStatus, TreatmentCourse

M = TypeVar("M", bound=Model)

PSEUDONYM = "Erased patient"
# `.invalid` is reserved (RFC 2606): no mail is ever delivered there, and no one can register the address.
PLACEHOLDER_DOMAIN = "erased.invalid"
# No argon2 hash, so verification fails for every password. Not empty: `Passwords.verify` takes an empty hash for a
# missing account and checks its timing-equaliser hash instead, whose password is in the source.
LOCKED_HASH = "!erased"
MAX_REASON = 2000
PURGE_BATCH = 50
# Preferences say something about a person's days, and nothing needs them any more: the model's defaults, with
# notifications off.
DEFAULT_PREFERENCES = {
    "diary_time": "20:00",
    "quiet_hours_start": "21:30",
    "quiet_hours_end": "08:00",
    "notifications_enabled": False,
}


@dataclass(frozen=True)
class Erasure:
    patient_id: UUID
    status: PatientStatus
    requested_at: datetime
    retained_until: datetime | None
    erased_at: datetime | None

    @classmethod
    def of(cls, patient: Patient) -> Erasure | None:
        """The erasure of an erased patient; None for anyone else. A status of ERASED set by hand, with no request
        time, is no erasure this service made: erasing it again completes it."""
        if patient.status is not PatientStatus.ERASED or patient.erasure_requested_at is None:
            return None
        return cls(
            patient_id=patient.id,
            status=patient.status,
            requested_at=patient.erasure_requested_at,
            retained_until=patient.retained_until,
            erased_at=patient.erased_at,
        )


class ErasureService:
    def __init__(self, *, accounts: AccountService, retention: timedelta) -> None:
        self.accounts = accounts
        # timedelta(0): no hold, the clinical record goes with the erasure.
        self.retention = retention

    async def erase_own(self, actor: Actor, password: str, *, now: datetime) -> Erasure:
        """The patient erases their own account, confirming with their password. A wrong password is
        BAD_USER_INPUT and counts as a failed sign-in on the account's login throttle key, so that a stolen access
        token cannot be used to guess the password; once the key is locked, RATE_LIMITED whatever the password.
        Asked again once erased (a retry after a lost answer), it answers the same Erasure: the password is gone by
        then, and nothing changes."""
        patient_id = require_patient(actor)
        patient = await Patient.get_or_none(id=patient_id, clinic_id=actor.clinic_id)
        if patient is None:
            raise NotFound("patient")
        if done := Erasure.of(patient):
            return done
        try:
            await self.accounts.confirm_identity(actor, password, None, now=now)
        except BadInput:
            # An erasure that committed after the patient was read has cleared the password: the answer is that
            # erasure.
            if done := Erasure.of(await Patient.get(id=patient_id)):
                return done
            raise
        return await self._erase(actor, patient_id, now=now)

    async def erase_patient(
        self, actor: Actor, patient_id: UUID, reason: str, *, password: str, otp: str | None = None, now: datetime
    ) -> Erasure:
        """A clinic admin erases a patient of their clinic on a request received by other channels, confirming with
        their password and, once they have a second factor, a code."""
        if actor.role is not Role.ADMIN:
            raise Forbidden("only clinic admins may erase a patient")
        if not reason.strip():
            raise BadInput("reason", "say why the patient is erased (the reason is not stored)")
        if len(reason) > MAX_REASON:
            raise BadInput("reason", f"at most {MAX_REASON} characters")
        await self.accounts.confirm_identity(actor, password, otp, now=now)
        return await self._erase(actor, patient_id, now=now)

    async def _erase(self, actor: Actor, patient_id: UUID, *, now: datetime) -> Erasure:
        async with in_transaction() as conn:
            # Locked: of two erasures at once the second waits, then finds the patient erased and answers the same.
            patient = await (
                Patient.filter(id=patient_id, clinic_id=actor.clinic_id).select_for_update().using_db(conn).first()
            )
            if patient is None:
                raise NotFound("patient", field="patient_id")
            if done := Erasure.of(patient):
                return done
            if patient.account_id is not None:
                await self._close_account(patient.account_id, conn)
            await _cut_contact(patient.id, now, conn)
            await self._hold_or_purge(patient, now, conn)
            await audit.record_security_event(actor, "patient.erase", [patient.id], now=now, using_db=conn)
        erasure = Erasure.of(patient)
        assert erasure is not None  # noqa: S101 -- _hold_or_purge has just set the status and the request time
        return erasure

    async def _close_account(self, account_id: UUID, conn: BaseDBAsyncClient) -> None:
        email = await Account.filter(id=account_id).using_db(conn).get().values_list("email", flat=True)
        await (
            Account.filter(id=account_id)
            .using_db(conn)
            .update(
                email=f"erased-{account_id.hex}@{PLACEHOLDER_DOMAIN}",
                password_hash=LOCKED_HASH,
                is_active=False,
                totp_secret_sealed=None,
                totp_confirmed_at=None,
                totp_last_step=None,
            )
        )
        await RefreshToken.filter(account_id=account_id).using_db(conn).delete()
        await ThrottleBucket.filter(key=self.accounts.policy.per_account.key(str(email))).using_db(conn).delete()

    async def _hold_or_purge(self, patient: Patient, now: datetime, conn: BaseDBAsyncClient) -> None:
        patient.display_name = f"{PSEUDONYM} {patient.id.hex[:8]}"
        patient.search_name = patient.display_name.lower()
        for name, value in DEFAULT_PREFERENCES.items():
            setattr(patient, name, value)
        patient.status = PatientStatus.ERASED
        patient.erasure_requested_at = now
        if self.retention:
            latest = await _latest_clinical_date(patient.id, now, conn)
            patient.retained_until = (latest or now) + self.retention
        if (patient.retained_until is None or patient.retained_until <= now) and not await _alerts_pending(
            patient.id, conn
        ):
            # No hold, or one that has already run out: nothing justifies keeping the record another day.
            await _purge(patient, now, conn)
            return
        # Held, if only until its critical alerts are resolved.
        patient.retained_until = patient.retained_until or now
        await patient.save(using_db=conn)


@dataclass
class PurgeReport:
    purged: int = 0
    prompts_cancelled: int = 0
    prompts_deleted: int = 0


async def purge(*, now: datetime, batch: int = PURGE_BATCH) -> PurgeReport:
    """The `erasure.purge` pass: held records whose hold has ended, then prompts planned after an erasure."""
    purged = await purge_held_records(now=now, batch=batch)
    cancelled, deleted = await purge_late_prompts(now=now, batch=batch)
    return PurgeReport(purged=purged, prompts_cancelled=cancelled, prompts_deleted=deleted)


async def purge_held_records(*, now: datetime, batch: int = PURGE_BATCH) -> int:
    """Deletes the clinical record of every erased patient whose hold has ended; the number of patients purged.

    Batches of `batch` patients, each in its own short transaction. Claimed with FOR UPDATE SKIP LOCKED, so several
    jobs replicas share the work and none waits for another (on SQLite, one process, a plain select)."""
    purged = 0
    while True:
        async with in_transaction() as conn:
            due = await (
                Patient.filter(Q(status=PatientStatus.ERASED) & (Q(erased_at=None, retained_until__lte=now) | _left()))
                .exclude(id__in=Subquery(pending_critical().values("patient_id")))
                .order_by("retained_until", "id")
                .limit(batch)
                .select_for_update(skip_locked=True)
                .using_db(conn)
            )
            for patient in due:
                await _purge(patient, now, conn)
                system = Actor.system(patient.clinic_id)
                await audit.record_security_event(system, "patient.purge", [patient.id], now=now, using_db=conn)
        purged += len(due)
        if len(due) < batch:
            return purged


async def purge_late_prompts(*, now: datetime, batch: int = PURGE_BATCH) -> tuple[int, int]:
    """Prompts a replan wrote for an erased patient after the erasure: cancelled in a held record, deleted behind a
    purge. The numbers of prompts cancelled and deleted.

    Claimed by patient, as the purge claims them (batches, FOR UPDATE SKIP LOCKED): a patient's rows are handled by
    one replica, and a patient whose record the purge is taking right now is left to the next pass."""
    cancelled = deleted = 0
    while True:
        async with in_transaction() as conn:
            claimed = await (
                Patient.filter(status=PatientStatus.ERASED, id__in=Subquery(_late_prompts().values("patient_id")))
                .order_by("id")
                .limit(batch)
                .select_for_update(skip_locked=True)
                .using_db(conn)
            )
            held = [p.id for p in claimed if p.erased_at is None]
            if held:
                late = _late_prompts().filter(patient_id__in=held).using_db(conn)
                ids = list(await late.values_list("id", flat=True))
                cancelled += await (
                    Prompt.filter(id__in=ids)
                    .using_db(conn)
                    .update(status=PromptStatus.CANCELLED, cancelled_at=now, next_reminder_at=None, updated_at=now)
                )
            purged = [p.id for p in claimed if p.erased_at is not None]
            if purged:
                prompts = Prompt.filter(patient_id__in=purged).values("id")
                await PushMessage.filter(prompt_id__in=Subquery(prompts)).using_db(conn).delete()
                deleted += await Prompt.filter(patient_id__in=purged).using_db(conn).delete()
        if len(claimed) < batch:
            return cancelled, deleted


def _late_prompts() -> QuerySet[Prompt]:
    """Prompts of erased patients that the erasure did not leave: any at all behind a purge; in a held record, the
    unsent ones (the erasure cancelled every unsent prompt) and those sent, or expired unsent, after it. A prompt the
    dispatcher released after the erasure went to no one (no device, notifications off), and would read as a missed
    check-in in the record. Answered ones are the record's own."""
    requested = F("patient__erasure_requested_at")
    after = Q(sent_at__gt=requested) | Q(status=PromptStatus.EXPIRED, sent_at=None, expired_at__gt=requested)
    settled = [PromptStatus.CANCELLED, PromptStatus.ANSWERED]
    held = Q(status=PromptStatus.SCHEDULED) | (after & Q(status__not_in=settled))
    return Prompt.filter(Q(patient__erased_at__isnull=False) | held, patient__status=PatientStatus.ERASED)


def _left() -> Q:
    """Purged, yet with alerts: a write that escaped the erasure's lock left them, and the rest of its record. Once
    its critical alerts are resolved (until then its patient counts as held, `visibility`), it goes too."""
    return Q(erased_at__isnull=False, id__in=Subquery(Alert.all().values("patient_id")))


async def _alerts_pending(patient_id: UUID, conn: BaseDBAsyncClient) -> bool:
    return await pending_critical().filter(patient_id=patient_id).using_db(conn).exists()


async def _cut_contact(patient_id: UUID, now: datetime, conn: BaseDBAsyncClient) -> None:
    devices = Device.filter(patient_id=patient_id).values("id")
    prompts = Prompt.filter(patient_id=patient_id).values("id")
    unsent = Q(status__in=[MessageStatus.PENDING, MessageStatus.CLAIMED], prompt_id__in=Subquery(prompts))
    await PushMessage.filter(Q(device_id__in=Subquery(devices)) | unsent).using_db(conn).delete()
    await Device.filter(patient_id=patient_id).using_db(conn).delete()
    # Cancelled means never sent; sent ones are history and expire as usual, with no reminder left to come.
    await (
        Prompt.filter(patient_id=patient_id, status=PromptStatus.SCHEDULED)
        .using_db(conn)
        .update(status=PromptStatus.CANCELLED, cancelled_at=now, next_reminder_at=None, updated_at=now)
    )
    await (
        Prompt.filter(patient_id=patient_id, status__in=OPEN_STATUSES)
        .using_db(conn)
        .update(next_reminder_at=None, updated_at=now)
    )
    await Invite.filter(patient_id=patient_id).using_db(conn).delete()


async def _latest_clinical_date(patient_id: UUID, now: datetime, conn: BaseDBAsyncClient) -> datetime | None:
    sessions = InfusionSession.filter(patient_id=patient_id).exclude(status=SessionStatus.CANCELLED)
    dates = [
        await _latest(DiaryEntry.filter(patient_id=patient_id), "recorded_at", now, conn),
        await _latest(QuestionnaireResponse.filter(patient_id=patient_id), "authored_at", now, conn),
        await _latest(sessions, "starts_at", now, conn),
    ]
    return max((d for d in dates if d is not None), default=None)


async def _latest(query: QuerySet[M], field: str, now: datetime, conn: BaseDBAsyncClient) -> datetime | None:
    # Only what has happened: a session booked for next month is no clinical date yet.
    rows = await query.filter(**{f"{field}__lte": now}).order_by(f"-{field}").limit(1).using_db(conn)
    return getattr(rows[0], field) if rows else None


async def _purge(patient: Patient, now: datetime, conn: BaseDBAsyncClient) -> None:
    """Deletes the patient's clinical record, children first (no reliance on the database's cascades)."""
    pid = patient.id
    prompts = Prompt.filter(patient_id=pid).values("id")
    await PushMessage.filter(prompt_id__in=Subquery(prompts)).using_db(conn).delete()
    await Prompt.filter(patient_id=pid).using_db(conn).delete()
    entries = DiaryEntry.filter(patient_id=pid).values("id")
    await DiaryEntryRevision.filter(entry_id__in=Subquery(entries)).using_db(conn).delete()
    await DiaryEntry.filter(patient_id=pid).using_db(conn).delete()
    await QuestionnaireResponse.filter(patient_id=pid).using_db(conn).delete()
    alerts = Alert.filter(patient_id=pid).values("id")
    await AlertEvent.filter(alert_id__in=Subquery(alerts)).using_db(conn).delete()
    await Alert.filter(patient_id=pid).using_db(conn).delete()
    await InfusionSession.filter(patient_id=pid).using_db(conn).delete()
    await TreatmentCourse.filter(patient_id=pid).using_db(conn).delete()
    patient.erased_at, patient.timezone = now, "UTC"
    await patient.save(using_db=conn)
