"""The facts a clinician's patient list shows for each patient, for a whole page at once (issue 6).

A page of 50 patients must cost a constant number of statements, not a few per patient: each fact is a correlated
scalar subquery of one SELECT over the page's patients, which both SQLite and PostgreSQL answer from the indexes
on (patient_id, …) of diary_entry, prompt and alert. The patient set is the access rule itself
(`_visible_patients`): an id the actor may not reach yields no row, exactly as a missing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from tortoise.expressions import RawSQL, Subquery
from tortoise.functions import Avg, Count, Max
from tortoise.queryset import QuerySet, ValuesQuery

from api.domain import audit
from api.domain.actor import Actor
from api.domain.alert.models import Alert, AlertStatus
from api.domain.alert.visibility import unreachable_patients
from api.domain.diary.models import DiaryEntry
from api.domain.patient.access import require_staff
from api.domain.patient.models import Patient, PatientStatus
from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.prompt.service import Adherence

PAIN_WINDOW = timedelta(days=7)
# Not yet resolved: what a clinician still has to deal with.
UNRESOLVED = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)
# The outer row of every fact's subquery. Tortoise has no outer reference; the patient table is never aliased in
# the queries below, so its own name is the reference. No value is ever written into this text.
THE_PATIENT = RawSQL('"patient"."id"')


@dataclass(frozen=True)
class Overview:
    patient_id: UUID
    last_entry_at: datetime | None
    # The plain mean of the entries' average pain in [now − 7 days, now): not PAIN_ROLLING7's mean of daily means.
    pain_mean_7_days: float | None
    pain_entries_7_days: int
    adherence: Adherence  # overall, all time
    open_alerts: int


class OverviewService:
    async def overviews(self, actor: Actor, patient_ids: Sequence[UUID], *, now: datetime) -> dict[UUID, Overview]:
        """Staff only: the open-alert count is the alerts' own rule (`Patient.alerts` is closed to patients).

        One SELECT for every id, and one audit event naming the patients found (none when the request already
        audited them all, as the list that showed them has)."""
        require_staff(actor)
        facts = _facts(actor, now)
        rows = await _visible_patients(actor, patient_ids).annotate(**facts).values("id", *facts)
        found = {o.patient_id: o for o in map(_overview, rows)}
        if found:
            await audit.record(actor, "patient.overview", list(found), now=now)
        return found

    async def latest_entries(
        self, actor: Actor, patient_ids: Sequence[UUID], *, now: datetime
    ) -> dict[UUID, DiaryEntry]:
        """Each reachable patient's newest entry not entered in error ((recorded_at, id) order, as the diary's),
        in one SELECT whatever the page size or the diaries' lengths. Patients reach their own."""
        newest = _visible_patients(actor, patient_ids).annotate(newest=Subquery(_newest_entry_id())).values("newest")
        rows = await DiaryEntry.filter(id__in=Subquery(newest), clinic_id=actor.clinic_id)
        if rows:
            await audit.record(actor, "diary.read", [e.patient_id for e in rows], now=now)
        return {e.patient_id: e for e in rows}


def _visible_patients(actor: Actor, patient_ids: Sequence[UUID]) -> QuerySet[Patient]:
    """`access.reachable_patient` as a filter: the actor's clinic; a patient only themself and never once erased;
    staff also an erased patient whose record a hold still keeps (`visibility.unreachable_patients`)."""
    query = Patient.filter(id__in=list(patient_ids), clinic_id=actor.clinic_id)
    if actor.is_patient:
        return query.filter(id=actor.patient_id).exclude(status=PatientStatus.ERASED)
    if actor.is_staff:
        return query.exclude(id__in=unreachable_patients(actor.clinic_id))
    return query.exclude(status=PatientStatus.ERASED)


def _live_entries() -> QuerySet[DiaryEntry]:
    return DiaryEntry.filter(patient_id=THE_PATIENT, deleted_at=None)


def _newest_entry_id() -> ValuesQuery[Literal[False]]:
    return _live_entries().order_by("-recorded_at", "-id").limit(1).values("id")


def _facts(actor: Actor, now: datetime) -> dict[str, Subquery]:
    week = _live_entries().filter(recorded_at__gte=now - PAIN_WINDOW, recorded_at__lt=now)
    prompts = Prompt.filter(patient_id=THE_PATIENT)
    unresolved = Alert.filter(patient_id=THE_PATIENT, clinic_id=actor.clinic_id, status__in=list(UNRESOLVED))
    return {
        "last_entry_at": _scalar(_live_entries(), Max("recorded_at")),
        "pain_mean": _scalar(week, Avg("pain_average")),
        # COUNT of the column, not of rows: an entry without an average pain is not in the mean.
        "pain_entries": _scalar(week, Count("pain_average")),
        "answered": _scalar(prompts.filter(status=PromptStatus.ANSWERED), Count("id")),
        "expired": _scalar(prompts.filter(status=PromptStatus.EXPIRED), Count("id")),
        "open_alerts": _scalar(unresolved, Count("id")),
    }


def _scalar(query: QuerySet[Any], aggregate: Avg | Count | Max) -> Subquery:
    return Subquery(query.annotate(value=aggregate).values("value"))


def _overview(row: dict[str, Any]) -> Overview:
    mean = row["pain_mean"]
    return Overview(
        patient_id=_uuid(row["id"]),
        last_entry_at=_instant(row["last_entry_at"]),
        pain_mean_7_days=float(mean) if isinstance(mean, int | float | Decimal) else None,
        pain_entries_7_days=int(row["pain_entries"] or 0),
        adherence=Adherence(None, int(row["answered"] or 0), int(row["expired"] or 0)),
        open_alerts=int(row["open_alerts"] or 0),
    )


def _uuid(value: object) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _instant(value: object) -> datetime | None:
    """A subquery's value is not converted by the ORM: SQLite gives the stored text, PostgreSQL a datetime."""
    if value is None:
        return None
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at.astimezone(UTC)
