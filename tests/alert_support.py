"""Shared by the alert tests (no tests here): a clinic with its staff and patients, completed sessions, diary
entries with symptoms, questionnaire responses, clinic overrides, and a way to read the notices a broker sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

from tortoise.transactions import in_transaction

from api.domain.account.models import Clinic
from api.domain.actor import Role
from api.domain.alert.broker import AlertNotice, LocalBroker, NoticeKind
from api.domain.alert.models import Alert, AlertEvent
from api.domain.alert.service import LIFECYCLE, Announced
from api.domain.alert.settings import SettingsChange
from api.domain.diary.models import DiaryEntry
from api.domain.diary.validation import DiaryInput, SideEffectReport
from api.domain.diary.vocabulary import SideEffect
from api.domain.questionnaire.models import QuestionnaireResponse
from api.domain.services import Services
from api.domain.treatment.models import InfusionSession, SessionStatus
from api.domain.treatment.service import SessionChange
from tests.factories import Factory, PatientUser, Staff

# Patients in New York: -05:00 in late November, so "local noon" is 17:00 UTC.
EST = timezone(timedelta(hours=-5))


@dataclass
class Ward:
    clinic: Clinic
    admin: Staff
    clinician: Staff
    alice: PatientUser
    bob: PatientUser


async def ward(factory: Factory) -> Ward:
    clinic = await factory.clinic()
    return Ward(
        clinic,
        await factory.staff(clinic, Role.ADMIN),
        await factory.staff(clinic),
        await factory.patient(clinic, name="Alice"),
        await factory.patient(clinic, name="Bob"),
    )


def effects(**severity_by_code: int) -> list[SideEffectReport]:
    return [SideEffectReport(SideEffect(code), severity) for code, severity in severity_by_code.items()]


def symptoms(at: datetime, **severity_by_code: int) -> DiaryInput:
    return DiaryInput(client_id=uuid4(), recorded_at=at, side_effects=effects(**severity_by_code))


async def log(factory: Factory, who: PatientUser, at: datetime, **values: Any) -> DiaryEntry:
    return await factory.entry(who, recorded_at=at, **values)


async def completed_session(
    services: Services, staff: Staff, who: PatientUser, *, ended_at: datetime, now: datetime, minutes: int = 60
) -> InfusionSession:
    starts = ended_at - timedelta(minutes=minutes)
    booked = await services.treatment.schedule(
        staff.actor, who.patient.id, starts_at=starts, planned_duration_minutes=minutes, course_id=None, now=starts
    )
    change = SessionChange(status=SessionStatus.COMPLETED, ended_at=ended_at)
    return await services.treatment.update(staff.actor, booked.id, change, now=now)


async def respond(
    services: Services,
    who: PatientUser,
    instrument: str,
    *,
    score: int | None,
    answers: dict[str, int] | None = None,
    derived: dict[str, Any] | None = None,
    now: datetime,
) -> Announced:
    """A stored response run through the rules in its own transaction, as the questionnaire service does."""
    async with in_transaction() as conn:
        response = await QuestionnaireResponse.create(
            clinic_id=who.patient.clinic_id,
            patient_id=who.patient.id,
            client_id=uuid4(),
            client_hash="0" * 64,
            instrument=instrument,
            instrument_version="1",
            answers=answers or {},
            score=score,
            derived=derived or {},
            authored_at=now,
            utc_offset_minutes=-300,
            created_at=now,
            using_db=conn,
        )
        return await services.alerts.on_response(who.patient, response, now=now, using_db=conn)


async def override(services: Services, admin: Staff, now: datetime, **thresholds: dict[str, Any]) -> None:
    """Replaces the clinic's overrides, from the version in force."""
    version = (await services.alerts.settings(admin.actor)).version
    await services.alerts.update_settings(admin.actor, SettingsChange(version, thresholds=thresholds), now=now)


async def pain_rebound(
    factory: Factory, services: Services, staff: Staff, who: PatientUser, now: datetime
) -> DiaryEntry:
    """A session that ended on 16 Nov (New York), then a low of 5 on the 17th and 7 on the 18th–20th: the entry of
    the 20th raises loss_of_response, and is returned."""
    ended = datetime(2026, 11, 16, 15, 0, tzinfo=EST)
    await completed_session(services, staff, who, ended_at=ended, now=now)
    for day, pain in ((17, 5), (18, 7), (19, 7)):
        await log(factory, who, datetime(2026, 11, day, 12, 0, tzinfo=EST), pain_average=pain)
    return await log(factory, who, datetime(2026, 11, 20, 12, 0, tzinfo=EST), pain_average=7)


async def alerts_of(who: PatientUser) -> list[Alert]:
    return await Alert.filter(patient_id=who.patient.id).order_by("raised_at", "id")


async def rules_raised(who: PatientUser) -> list[str]:
    return [a.rule_id for a in await alerts_of(who)]


async def actions(alert_id: UUID) -> list[str]:
    events = await AlertEvent.filter(alert_id=alert_id)
    return [e.action for e in sorted(events, key=lambda e: (e.at, LIFECYCLE[e.action]))]


SENTINEL = AlertNotice(alert_id=UUID(int=0), clinic_id=UUID(int=0))


async def notices_until_now(
    broker: LocalBroker, clinic_id: UUID, stream: AsyncIterator[AlertNotice]
) -> list[AlertNotice]:
    """Everything the subscription received so far. A sentinel published last marks the end, so the test never
    waits on a clock to conclude that nothing else came."""
    broker.deliver(AlertNotice(SENTINEL.alert_id, clinic_id, NoticeKind.RAISED))
    received: list[AlertNotice] = []
    async for notice in stream:
        if notice.alert_id == SENTINEL.alert_id:
            return received
        received.append(notice)
    return received
