"""Patients as clinicians (and the patient themself) see them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import strawberry

from api.domain.errors import NotFound
from api.domain.outcome.series import Bucket
from api.domain.patient.erasure import Erasure as DomainErasure
from api.domain.patient.models import Patient as PatientModel
from api.domain.patient.models import PatientStatus as DomainPatientStatus
from api.domain.patient.overview import Overview
from schema.alert.operations import alert_page
from schema.alert.types import Alert, AlertStatus, Severity
from schema.context import Info
from schema.diary.operations import diary_page
from schema.diary.types import DiaryEntry
from schema.ids import to_id
from schema.outcome.operations import course_outcomes, patient_series
from schema.outcome.types import CourseOutcome, Series, SeriesBucket, SeriesMetric
from schema.pagination import Connection
from schema.prompt.types import Adherence, Prompt
from schema.questionnaire.operations import questionnaire_page
from schema.questionnaire.types import QuestionnaireResponse
from schema.treatment.types import InfusionSession, TreatmentCourse

PatientStatus = strawberry.enum(DomainPatientStatus)


@strawberry.type(description="The facts a clinician's patient list shows.")
class PatientOverview:
    last_entry_at: datetime | None = strawberry.field(
        description="When the newest entry not entered in error applies; null without one."
    )
    pain_mean_7_days: float | None = strawberry.field(
        description="Mean average pain of the entries of the last 7 days (now − 7 days inclusive to now), each "
        "entry weighing the same; null without any."
    )
    pain_entries_7_days: int = strawberry.field(description="How many entries that mean is over.")
    adherence: Adherence = strawberry.field(description="Overall and all time, as the first row of adherence.")
    open_alerts: int = strawberry.field(description="The patient's alerts not yet resolved (open or acknowledged).")

    @classmethod
    def from_domain(cls, o: Overview) -> PatientOverview:
        return cls(
            last_entry_at=o.last_entry_at,
            pain_mean_7_days=o.pain_mean_7_days,
            pain_entries_7_days=o.pain_entries_7_days,
            adherence=Adherence.from_domain(o.adherence),
            open_alerts=o.open_alerts,
        )


@strawberry.type
class Patient:
    id: strawberry.ID
    display_name: str
    status: PatientStatus  # type: ignore[valid-type]
    timezone: str
    diary_time: str
    quiet_hours_start: str
    quiet_hours_end: str
    notifications_enabled: bool
    created_at: datetime
    activated_at: datetime | None
    _model: strawberry.Private[PatientModel]

    @classmethod
    def from_model(cls, p: PatientModel) -> Patient:
        return cls(
            id=to_id(p.id),
            display_name=p.display_name,
            status=p.status,
            timezone=p.timezone,
            diary_time=p.diary_time,
            quiet_hours_start=p.quiet_hours_start,
            quiet_hours_end=p.quiet_hours_end,
            notifications_enabled=p.notifications_enabled,
            created_at=p.created_at,
            activated_at=p.activated_at,
            _model=p,
        )

    @strawberry.field(description="Entries newest first; from is inclusive, to exclusive.")
    async def diary(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
        include_deleted: bool = False,
    ) -> Connection[DiaryEntry]:
        return await diary_page(info, self.id, first, after, from_, to, include_deleted, known=self._model)

    @strawberry.field(description="Infusion sessions, oldest first.")
    async def sessions(self, info: Info) -> list[InfusionSession]:
        ctx = info.context
        actor = ctx.require_actor()
        rows = await ctx.services.treatment.sessions(actor, self._model.id, now=ctx.now)
        return [InfusionSession.from_model(s, clinical=actor.is_staff) for s in rows]

    @strawberry.field(description="Treatment courses (an induction series plus boosters).")
    async def courses(self, info: Info) -> list[TreatmentCourse]:
        ctx = info.context
        rows = await ctx.services.treatment.courses(ctx.require_actor(), self._model.id, now=ctx.now)
        return [TreatmentCourse.from_model(c) for c in rows]

    @strawberry.field(description="Check-ins, newest first, including future ones already planned.")
    async def prompts(self, info: Info) -> list[Prompt]:
        ctx = info.context
        rows = await ctx.services.prompts.of_patient(ctx.require_actor(), self._model.id, now=ctx.now)
        return [Prompt.from_model(p) for p in rows]

    @strawberry.field(description="Answered ÷ (answered + expired), overall first, then per instrument.")
    async def adherence(
        self,
        info: Info,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> list[Adherence]:
        ctx = info.context
        rows = await ctx.services.prompts.adherence(
            ctx.require_actor(), self._model.id, start=from_, end=to, now=ctx.now
        )
        return [Adherence.from_domain(a) for a in rows]

    @strawberry.field(description="Treatment response per course, oldest first, computed from the diary.")
    async def outcomes(self, info: Info, return_rule: str | None = None) -> list[CourseOutcome]:
        return await course_outcomes(info, self._model.id, return_rule)

    @strawberry.field(description="Chart-ready series over local days; from inclusive, to exclusive, ≤ 366 days.")
    async def series(
        self,
        info: Info,
        metric: SeriesMetric,  # type: ignore[valid-type]
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        bucket: SeriesBucket = Bucket.DAY,  # type: ignore[valid-type]
    ) -> Series:
        return await patient_series(info, self._model, metric, from_, to, bucket)

    @strawberry.field(description="Questionnaire responses newest first, optionally of one instrument.")
    async def questionnaires(
        self, info: Info, first: int | None = None, after: str | None = None, instrument: str | None = None
    ) -> Connection[QuestionnaireResponse]:
        return await questionnaire_page(info, self.id, first, after, instrument)

    @strawberry.field(description="Clinic staff: the patient's alerts, newest first.")
    async def alerts(
        self,
        info: Info,
        status: list[AlertStatus] | None = None,  # type: ignore[valid-type]
        severity: list[Severity] | None = None,  # type: ignore[valid-type]
        escalated: bool | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Alert]:
        return await alert_page(
            info, patient_id=self.id, status=status, severity=severity, escalated=escalated, first=first, after=after
        )

    @strawberry.field(description="The newest entry that is not entered in error.")
    async def last_entry(self, info: Info) -> DiaryEntry | None:
        entry = await info.context.loaders.latest_entry.load(self._model.id)
        return DiaryEntry.from_model(entry) if entry else None

    @strawberry.field(description="Clinic staff: the facts a clinician's patient list shows, in one query per page.")
    async def overview(self, info: Info) -> PatientOverview:
        found = await info.context.loaders.overview.load(self._model.id)
        if found is None:
            raise NotFound("patient")
        return PatientOverview.from_domain(found)

    @strawberry.field(description="Sign-in email, once the patient has registered; null once erased.")
    async def email(self, info: Info) -> str | None:
        # An erased patient's account holds a placeholder, not an address anyone could write to.
        if self._model.account_id is None or self._model.status is DomainPatientStatus.ERASED:
            return None
        account = await info.context.loaders.account.load(self._model.account_id)
        return account.email if account else None


@strawberry.type(description="A patient's erasure (GDPR Art. 17).")
class Erasure:
    patient_id: strawberry.ID
    status: PatientStatus  # type: ignore[valid-type]
    requested_at: datetime
    retained_until: datetime | None = strawberry.field(
        description="Until when a legal-retention hold keeps the clinical record; null without a hold."
    )
    erased_at: datetime | None = strawberry.field(description="When the clinical record was deleted; null while held.")

    @classmethod
    def from_domain(cls, e: DomainErasure) -> Erasure:
        return cls(
            patient_id=to_id(e.patient_id),
            status=e.status,
            requested_at=e.requested_at,
            retained_until=e.retained_until,
            erased_at=e.erased_at,
        )
