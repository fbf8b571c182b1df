"""Materialising prompts: reconcile the rows in the database with what the planner says is owed.

Only unsent (SCHEDULED) prompts are ever moved or cancelled; sent, answered and expired ones are history. The
unique key (patient, rule, anchor) makes every pass idempotent, on one replica or several.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError

from api.domain.patient.models import Patient, PatientStatus
from api.domain.prompt.localtime import local_date, parse_hhmm
from api.domain.prompt.models import Prompt, PromptPlan, PromptStatus
from api.domain.prompt.planner import Occurrence, Preferences, SessionState, SessionView, occurrences
from api.domain.prompt.plans import rules_of
from api.domain.treatment.models import InfusionSession

PLANNED_STATUSES = (PatientStatus.ACTIVE,)
# Sessions this far back can still anchor open prompts (72 h checks, the course-end PGIC 7 days + 7 days).
SESSION_LOOKBACK = timedelta(days=21)


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
    touched: set[UUID] = field(default_factory=set)

    def add(self, other: PlanReport) -> None:
        self.patients += other.patients
        self.created += other.created
        self.moved += other.moved
        self.cancelled += other.cancelled
        self.revived += other.revived


async def plan_all(policy: SchedulingPolicy, *, now: datetime) -> PlanReport:
    """Plan every patient who follows a plan, in batches: memory stays flat as the clinic grows."""
    report = PlanReport()
    async for batch in _patient_batches(policy.batch_size):
        report.add(await replan(batch, policy, now=now))
    return report


async def _patient_batches(size: int) -> AsyncIterator[list[Patient]]:
    last: UUID | None = None
    while True:
        query = Patient.filter(status__in=PLANNED_STATUSES, plan_family_id__not_isnull=True)
        if last is not None:
            query = query.filter(id__gt=last)
        batch = await query.order_by("id").limit(size)
        if not batch:
            return
        yield batch
        last = batch[-1].id


async def replan(patients: Sequence[Patient], policy: SchedulingPolicy, *, now: datetime) -> PlanReport:
    """Reconcile these patients' prompts around `now`. Patients no longer planned lose their unsent prompts."""
    report = PlanReport(patients=len(patients))
    start, end = now - policy.lookback, now + policy.horizon
    planned = [p for p in patients if p.status in PLANNED_STATUSES and p.plan_family_id and p.enrolled_at]
    plans = await _current_plans({p.plan_family_id for p in planned if p.plan_family_id})
    sessions = await _sessions([p.id for p in planned], start - SESSION_LOOKBACK)
    wanted: dict[UUID, list[Occurrence]] = {}
    for patient in planned:
        plan = plans.get(patient.plan_family_id) if patient.plan_family_id else None
        if plan is None:
            continue
        owed = occurrences(rules_of(plan), _preferences(patient), sessions.get(patient.id, []), start, end)
        wanted[patient.id] = [o for o in owed if o.due_at >= _enrolled(patient)]
    ids = [p.id for p in patients]
    existing = await _existing(ids, wanted, start, end)
    for patient in patients:
        plan = plans.get(patient.plan_family_id) if patient.plan_family_id else None
        owed = wanted.get(patient.id, [])
        await _reconcile(patient, plan, owed, existing.get(patient.id, {}), now=now, report=report)
    return report


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
    rows = await Prompt.filter(
        patient_id__in=patient_ids, status=PromptStatus.SCHEDULED, due_at__gte=start, due_at__lt=end
    )
    if anchors:
        rows += await Prompt.filter(patient_id__in=patient_ids, anchor__in=anchors)
    for row in rows:
        out.setdefault(row.patient_id, {})[(row.rule_id, row.anchor)] = row
    return out


async def _reconcile(
    patient: Patient,
    plan: PromptPlan | None,
    owed: list[Occurrence],
    existing: dict[tuple[str, str], Prompt],
    *,
    now: datetime,
    report: PlanReport,
) -> None:
    keys = {(o.rule_id, o.anchor) for o in owed}
    new: list[Prompt] = []
    for o in owed:
        row = existing.get((o.rule_id, o.anchor))
        if row is None:
            # No backfill: a window that has already closed gets no prompt (one that exists will expire).
            if o.expires_at > now:
                new.append(_new_prompt(patient, plan, o, now))
        elif row.status is PromptStatus.SCHEDULED and _differs(row, o):
            _apply(row, o, now)
            await row.save()
            report.moved += 1
        elif row.status is PromptStatus.CANCELLED and row.sent_at is None and o.expires_at > now:
            # Cancelled by an earlier pass (a session moved out and back): owed again.
            _apply(row, o, now)
            row.status, row.cancelled_at = PromptStatus.SCHEDULED, None
            await row.save()
            report.revived += 1
    for key, row in existing.items():
        if key not in keys and row.status is PromptStatus.SCHEDULED:
            row.status, row.cancelled_at, row.updated_at = PromptStatus.CANCELLED, now, now
            await row.save(update_fields=["status", "cancelled_at", "updated_at"])
            report.cancelled += 1
    if new:
        report.created += await _insert(new)
    if new or report.moved or report.cancelled:
        report.touched.add(patient.id)


async def _insert(prompts: list[Prompt]) -> int:
    try:
        await Prompt.bulk_create(prompts)
        return len(prompts)
    except IntegrityError:
        # Another replica planned the same patient at the same moment; the unique key kept one row each.
        created = 0
        for prompt in prompts:
            try:
                await prompt.save(force_create=True)
                created += 1
            except IntegrityError:
                continue
        return created


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
    _apply(prompt, o, now)
    return prompt


def _differs(row: Prompt, o: Occurrence) -> bool:
    return (row.due_at, row.deliver_at, row.expires_at, row.push, row.instrument, row.session_id) != (
        o.due_at,
        o.deliver_at,
        o.expires_at,
        o.push,
        o.instrument,
        o.session_id,
    )


def _apply(row: Prompt, o: Occurrence, now: datetime) -> None:
    row.instrument = o.instrument
    row.session_id = o.session_id
    row.due_at = o.due_at
    row.deliver_at = o.deliver_at
    row.expires_at = o.expires_at
    row.push = o.push
    row.respects_quiet_hours = o.respects_quiet_hours
    row.reminder_minutes = [int(r.total_seconds() // 60) for r in o.reminders]
    row.updated_at = now
