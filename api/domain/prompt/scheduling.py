"""Materialising prompts: reconcile the rows in the database with what the planner says is owed.

Only unsent (SCHEDULED) prompts are ever moved or cancelled; sent, answered and expired ones are history. The
unique key (patient, rule, anchor) makes every pass idempotent, on one replica or several. Every write is
conditional on the status that was read: a prompt the dispatcher sent, or the patient answered, while a pass was
deciding is left as it is.

A service replans a patient after its own transaction has committed, with the patient it read: an erasure that
committed in between must not get prompts planned again (created, revived or moved) for an erased patient. So the
statuses of the patients to be written for are read again right before the writes, and those no longer planned
are left out. That narrows the window to the writes themselves; the erasure's purge pass cancels or deletes
whatever a write in that window still left (`erasure.purge_late_prompts`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery

from api.domain.patient.models import Patient, PatientStatus
from api.domain.prompt.localtime import local_date, parse_hhmm, resolve
from api.domain.prompt.models import Prompt, PromptPlan, PromptStatus
from api.domain.prompt.planner import Occurrence, Preferences, SessionState, SessionView, occurrences
from api.domain.prompt.plans import rules_of
from api.domain.treatment.models import InfusionSession

PLANNED_STATUSES = (PatientStatus.ACTIVE,)
# Sessions this far back can still anchor open prompts (72 h checks, the course-end PGIC 7 days + 7 days).
SESSION_LOOKBACK = timedelta(days=21)
# Fields the planner owns on an unsent prompt; the dispatcher owns its status and the reminder bookkeeping.
PLANNED_FIELDS = (
    "late",
    "instrument",
    "session_id",
    "due_at",
    "deliver_at",
    "expires_at",
    "push",
    "respects_quiet_hours",
    "reminder_minutes",
    "updated_at",
)
UPDATE_BATCH = 200


@dataclass(frozen=True)
class SchedulingPolicy:
    horizon: timedelta = timedelta(days=7)
    # Occurrences due this far back are still reconciled (their windows may be open).
    lookback: timedelta = timedelta(days=7)
    batch_size: int = 500


@dataclass
class PlanReport:
    patients: int = 0
    created: int = 0
    moved: int = 0
    cancelled: int = 0
    revived: int = 0

    def add(self, other: PlanReport) -> None:
        self.patients += other.patients
        self.created += other.created
        self.moved += other.moved
        self.cancelled += other.cancelled
        self.revived += other.revived


@dataclass
class PlanState:
    """What one batch's reconciliation read: the planner's occurrences and the rows that may match them."""

    patients: list[Patient]
    plans: dict[UUID, PromptPlan]
    preferences: dict[UUID, Preferences]
    wanted: dict[UUID, list[Occurrence]]
    existing: dict[UUID, dict[tuple[str, str], Prompt]]


@dataclass
class _Changes:
    new: list[Prompt] = field(default_factory=list)
    moved: list[Prompt] = field(default_factory=list)
    revived: list[Prompt] = field(default_factory=list)
    cancelled: list[UUID] = field(default_factory=list)


async def plan_all(policy: SchedulingPolicy, *, now: datetime) -> PlanReport:
    """Plan every patient who follows a plan, in batches: memory and statements per batch stay flat."""
    report = PlanReport()
    async for batch in _patient_batches(policy.batch_size):
        report.add(await replan(batch, policy, now=now))
    report.cancelled += await _cancel_unplanned(now)
    return report


def _planned() -> Q:
    """Who follows a plan, as the database says now."""
    return Q(status__in=PLANNED_STATUSES, plan_family_id__not_isnull=True)


async def _patient_batches(size: int) -> AsyncIterator[list[Patient]]:
    last: UUID | None = None
    while True:
        query = Patient.filter(_planned())
        if last is not None:
            query = query.filter(id__gt=last)
        batch = await query.order_by("id").limit(size)
        if not batch:
            return
        yield batch
        last = batch[-1].id


async def _cancel_unplanned(now: datetime) -> int:
    """Patients paused, discharged or taken off their plan by any path: nothing unsent of theirs goes out."""
    unplanned = Patient.filter(Q(status__not_in=PLANNED_STATUSES) | Q(plan_family_id__isnull=True)).values("id")
    return await Prompt.filter(
        status=PromptStatus.SCHEDULED, expires_at__gt=now, patient_id__in=Subquery(unplanned)
    ).update(status=PromptStatus.CANCELLED, cancelled_at=now, updated_at=now)


async def replan(patients: Sequence[Patient], policy: SchedulingPolicy, *, now: datetime) -> PlanReport:
    """Reconcile these patients' prompts around `now`. Patients no longer planned lose their unsent prompts."""
    return await write_plan(await load_state(patients, policy, now=now), now=now)


async def load_state(patients: Sequence[Patient], policy: SchedulingPolicy, *, now: datetime) -> PlanState:
    start, end = now - policy.lookback, now + policy.horizon
    planned = [p for p in patients if p.status in PLANNED_STATUSES and p.plan_family_id and p.enrolled_at]
    plans = await _current_plans({p.plan_family_id for p in planned if p.plan_family_id})
    sessions = await _sessions([p.id for p in planned], start - SESSION_LOOKBACK)
    preferences: dict[UUID, Preferences] = {}
    wanted: dict[UUID, list[Occurrence]] = {}
    for patient in planned:
        plan = plans.get(patient.plan_family_id) if patient.plan_family_id else None
        if plan is None:
            continue
        prefs = preferences[patient.id] = _preferences(patient)
        owed = occurrences(rules_of(plan), prefs, sessions.get(patient.id, []), start, end)
        wanted[patient.id] = [o for o in owed if o.due_at >= _enrolled(patient)]
    existing = await _existing([p.id for p in patients], wanted, start, end)
    return PlanState(list(patients), plans, preferences, wanted, existing)


async def write_plan(state: PlanState, *, now: datetime) -> PlanReport:
    """One batch's writes, in a fixed number of statements whatever the number of patients in it."""
    changes = _Changes()
    for patient in state.patients:
        _decide(patient, state, changes, now)
    await _drop_unplanned(changes)
    report = PlanReport(patients=len(state.patients))
    report.created = await _insert(changes.new)
    report.moved = await _update_where(changes.moved, PLANNED_FIELDS, status=PromptStatus.SCHEDULED)
    report.revived = await _update_where(
        changes.revived, (*PLANNED_FIELDS, "status", "cancelled_at"), status=PromptStatus.CANCELLED, sent_at=None
    )
    if changes.cancelled:
        report.cancelled = await Prompt.filter(
            id__in=changes.cancelled, status=PromptStatus.SCHEDULED, expires_at__gt=now
        ).update(status=PromptStatus.CANCELLED, cancelled_at=now, updated_at=now)
    return report


async def _drop_unplanned(changes: _Changes) -> None:
    """Leaves out the prompts planned for a patient the database no longer plans for (erased, paused, taken off
    their plan since they were read): one query for the batch, and none when there is nothing to plan.
    Cancellations stay: they are right whatever the patient's status."""
    planning = {p.patient_id for p in (*changes.new, *changes.moved, *changes.revived)}
    if not planning:
        return
    planned = set(await Patient.filter(_planned(), id__in=list(planning)).values_list("id", flat=True))
    if planned == planning:
        return
    changes.new = [p for p in changes.new if p.patient_id in planned]
    changes.moved = [p for p in changes.moved if p.patient_id in planned]
    changes.revived = [p for p in changes.revived if p.patient_id in planned]


def _decide(patient: Patient, state: PlanState, changes: _Changes, now: datetime) -> None:
    plan = state.plans.get(patient.plan_family_id) if patient.plan_family_id else None
    existing = state.existing.get(patient.id, {})
    keys: set[tuple[str, str]] = set()
    for o in state.wanted.get(patient.id, []):
        keys.add((o.rule_id, o.anchor))
        row = existing.get((o.rule_id, o.anchor))
        if row is None:
            # No backfill: a window that has already closed gets no prompt (one that exists will expire).
            if o.expires_at > now:
                changes.new.append(_new_prompt(patient, plan, o, now))
        elif row.status is PromptStatus.SCHEDULED:
            deliver_at = row.deliver_at if _held(row, o, state.preferences[patient.id], now) else o.deliver_at
            if _differs(row, o, deliver_at):
                _apply(row, o, deliver_at, now)
                changes.moved.append(row)
        elif row.status is PromptStatus.CANCELLED and row.sent_at is None and o.expires_at > now:
            # Cancelled by an earlier pass (a session moved out and back, a pause ended): owed again.
            _apply(row, o, o.deliver_at, now)
            row.status, row.cancelled_at = PromptStatus.SCHEDULED, None
            changes.revived.append(row)
    # A window that already closed is a missed prompt, not a cancelled one: the expire pass records it.
    changes.cancelled += [
        r.id for k, r in existing.items() if k not in keys and r.status is PromptStatus.SCHEDULED and r.expires_at > now
    ]


def _held(row: Prompt, o: Occurrence, prefs: Preferences, now: datetime) -> bool:
    """Whether the dispatcher is holding this due prompt back (daily cap reached, or a late release that fell in
    quiet hours) and the plan itself has not changed. Without this, every pass would undo the hold and the next
    dispatch would set it again. A hold always ends where quiet hours end: a new end of quiet hours or a new zone
    lifts it, and the dispatcher decides afresh."""
    if (row.due_at, row.expires_at, row.push) != (o.due_at, o.expires_at, o.push):
        return False
    if not (o.deliver_at <= now and o.deliver_at < row.deliver_at < o.expires_at):
        return False
    return row.deliver_at == resolve(local_date(row.deliver_at, prefs.zone), prefs.quiet_end, prefs.zone)


def _enrolled(patient: Patient) -> datetime:
    assert patient.enrolled_at is not None  # noqa: S101 -- filtered above
    return patient.enrolled_at


def _preferences(patient: Patient) -> Preferences:
    zone = ZoneInfo(patient.timezone)
    return Preferences(
        zone=zone,
        diary_time=parse_hhmm(patient.diary_time),
        quiet_start=parse_hhmm(patient.quiet_hours_start),
        quiet_end=parse_hhmm(patient.quiet_hours_end),
        enrolled_on=local_date(_enrolled(patient), zone),
    )


async def _current_plans(families: set[UUID]) -> dict[UUID, PromptPlan]:
    plans = await PromptPlan.filter(family_id__in=families, is_current=True) if families else []
    return {p.family_id: p for p in plans}


async def _sessions(patient_ids: list[UUID], since: datetime) -> dict[UUID, list[SessionView]]:
    out: dict[UUID, list[SessionView]] = {}
    if not patient_ids:
        return out
    for s in await InfusionSession.filter(patient_id__in=patient_ids, starts_at__gte=since).order_by("starts_at"):
        ends = s.ended_at or s.starts_at + timedelta(minutes=s.planned_duration_minutes)
        out.setdefault(s.patient_id, []).append(
            SessionView(
                id=s.id, course_id=s.course_id, starts_at=s.starts_at, ends_at=ends, state=SessionState(s.status)
            )
        )
    return out


async def _existing(
    patient_ids: list[UUID], wanted: dict[UUID, list[Occurrence]], start: datetime, end: datetime
) -> dict[UUID, dict[tuple[str, str], Prompt]]:
    """Rows that may need reconciling: every unsent prompt in range, and every row an occurrence would key."""
    out: dict[UUID, dict[tuple[str, str], Prompt]] = {}
    if not patient_ids:
        return out
    anchors = {o.anchor for owed in wanted.values() for o in owed}
    in_range = Q(status=PromptStatus.SCHEDULED, due_at__gte=start, due_at__lt=end)
    keyed = Q(in_range, Q(anchor__in=anchors), join_type="OR") if anchors else in_range
    for row in await Prompt.filter(keyed, patient_id__in=patient_ids):
        out.setdefault(row.patient_id, {})[(row.rule_id, row.anchor)] = row
    return out


async def _insert(prompts: list[Prompt]) -> int:
    if not prompts:
        return 0
    try:
        await Prompt.bulk_create(prompts)
        return len(prompts)
    except IntegrityError:
        # Another replica planned the same patients at the same moment; the unique key kept one row each.
        created = 0
        for prompt in prompts:
            try:
                await prompt.save(force_create=True)
                created += 1
            except IntegrityError:
                continue
        return created


async def _update_where(rows: list[Prompt], fields: Sequence[str], **unchanged: object) -> int:
    """Writes `fields` of each row, but only where the row still is as it was read."""
    if not rows:
        return 0
    return await Prompt.filter(**unchanged).bulk_update(rows, fields=list(fields), batch_size=UPDATE_BATCH)


def _new_prompt(patient: Patient, plan: PromptPlan | None, o: Occurrence, now: datetime) -> Prompt:
    assert plan is not None  # noqa: S101 -- occurrences only exist for a plan
    prompt = Prompt(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        plan_id=plan.id,
        rule_id=o.rule_id,
        anchor=o.anchor,
        status=PromptStatus.SCHEDULED,
        created_at=now,
    )
    _apply(prompt, o, o.deliver_at, now)
    return prompt


def _reminders(o: Occurrence) -> list[int]:
    return [int(r.total_seconds() // 60) for r in o.reminders]


def _differs(row: Prompt, o: Occurrence, deliver_at: datetime) -> bool:
    planned = (o.due_at, deliver_at, o.expires_at, o.push, o.instrument, o.session_id)
    stored = (row.due_at, row.deliver_at, row.expires_at, row.push, row.instrument, row.session_id)
    policy = (row.respects_quiet_hours, list(row.reminder_minutes)) != (o.respects_quiet_hours, _reminders(o))
    return stored != planned or policy


def _apply(row: Prompt, o: Occurrence, deliver_at: datetime, now: datetime) -> None:
    # A late release the dispatcher is holding stays late; a prompt planned for another time is not late (yet).
    row.late = row.late and deliver_at == row.deliver_at
    row.instrument = o.instrument
    row.session_id = o.session_id
    row.due_at = o.due_at
    row.deliver_at = deliver_at
    row.expires_at = o.expires_at
    row.push = o.push
    row.respects_quiet_hours = o.respects_quiet_hours
    row.reminder_minutes = _reminders(o)
    row.updated_at = now
