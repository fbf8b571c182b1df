"""A demo clinic with plausible data: 20 patients, 90 days of diary around infusion series."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from api.domain.account.models import Clinic
from api.domain.actor import Actor, Role
from api.domain.diary.validation import DiaryInput, SideEffectReport
from api.domain.diary.vocabulary import BodyRegion, SideEffect
from api.domain.prompt.scheduling import SchedulingPolicy, plan_all
from api.domain.prompt.service import expire_due
from api.domain.push import devices
from api.domain.push.models import ProviderName
from api.domain.questionnaire.service import QuestionnaireInput
from api.domain.services import Services
from api.domain.treatment.models import SessionStatus
from api.domain.treatment.service import SessionChange

CLINIC_NAME = "Interlude Demo Clinic"
PASSWORD = "interlude-demo-pass"  # noqa: S105 -- published demo credential, development only
CLINICIAN_EMAIL = "clinician@demo.interlude.test"
ADMIN_EMAIL = "admin@demo.interlude.test"
PATIENTS = 20
DAYS = 90
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "Europe/London")
FIRST_NAMES = (
    "Ada",
    "Ben",
    "Cleo",
    "Dev",
    "Esme",
    "Finn",
    "Gia",
    "Hugo",
    "Iris",
    "Jon",
    "Kai",
    "Lena",
    "Milo",
    "Nora",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sam",
    "Tess",
)
NAMESPACE = UUID("6f1c1b8e-3c1a-4f57-9a54-2f0c0f1d7a10")


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str


async def seeded() -> bool:
    return await Clinic.exists(name=CLINIC_NAME)


async def seed(services: Services, *, now: datetime, progress: Callable[[str], None]) -> list[DemoLogin]:
    rng = random.Random(20261126)  # noqa: S311 -- demo data, not security
    clinic = await services.accounts.create_clinic(CLINIC_NAME, now=now - timedelta(days=DAYS + 10))
    clinician = await services.accounts.create_staff(clinic.id, Role.CLINICIAN, CLINICIAN_EMAIL, PASSWORD, now=now)
    await services.accounts.create_staff(clinic.id, Role.ADMIN, ADMIN_EMAIL, PASSWORD, now=now)
    staff = Actor(account_id=clinician.id, role=Role.CLINICIAN, clinic_id=clinic.id)
    logins = [DemoLogin("clinician", CLINICIAN_EMAIL, PASSWORD), DemoLogin("admin", ADMIN_EMAIL, PASSWORD)]
    joined = now - timedelta(days=DAYS + 1)
    for n in range(PATIENTS):
        email = f"patient{n + 1:02d}@demo.interlude.test"
        zone = ZONES[n % len(ZONES)]
        name = f"{FIRST_NAMES[n]} {chr(ord('A') + (n * 7) % 26)}."
        invite = await services.patients.invite(staff, display_name=name, email=email, timezone=zone, now=joined)
        session = await services.patients.register(
            invite_code=invite.code, email=email, password=PASSWORD, timezone=None, ip=None, now=joined
        )
        patient = Actor(
            account_id=session.account.id, role=Role.PATIENT, clinic_id=clinic.id, patient_id=invite.patient.id
        )
        # A phone per patient: with the default `log` provider, pushes are recorded, not sent.
        await devices.register(patient, ProviderName.EXPO, f"ExponentPushToken[demo-{n + 1:02d}]", "ios", now=now)
        infusion_days = _infusion_days(rng)
        await _sessions(services, staff, invite.patient.id, infusion_days, zone=ZoneInfo(zone), now=now)
        entries = _diary(rng, patient_no=n, infusion_days=infusion_days, zone=ZoneInfo(zone), now=now)
        outcomes = await services.diary.sync(patient, entries, now=now)
        refused = [o for o in outcomes if o.error is not None]
        if refused:
            raise RuntimeError(f"demo data refused: {refused[0].error}")
        answered = await _questionnaires(services, patient, rng, patient_no=n, infusion_days=infusion_days, now=now)
        logins.append(DemoLogin("patient", email, PASSWORD))
        progress(
            f"patient {n + 1}/{PATIENTS}: {len(infusion_days) + 1} sessions, {len(outcomes)} diary entries, "
            f"{answered} questionnaires"
        )
    # Bring every patient's prompts up to date: the next week is planned, closed windows are missed.
    await expire_due(now=now)
    await plan_all(SchedulingPolicy(), now=now)
    return logins


async def _sessions(
    services: Services, staff: Actor, patient_id: UUID, infusion_days: list[int], *, zone: ZoneInfo, now: datetime
) -> None:
    """The past series as completed sessions (09:00 local, four hours), and a booster booked for next week."""
    today = now.astimezone(zone).date()
    for day_no in infusion_days:
        starts = datetime.combine(today - timedelta(days=DAYS - day_no), time(9, 0), tzinfo=zone)
        booked = starts - timedelta(days=7)
        session = await services.treatment.schedule(
            staff, patient_id, starts_at=starts, planned_duration_minutes=240, course_id=None, now=booked
        )
        done = SessionChange(status=SessionStatus.COMPLETED, ended_at=starts + timedelta(hours=4), dose_mg=35.0)
        await services.treatment.update(staff, session.id, done, now=starts + timedelta(hours=4))
    booster = datetime.combine(today + timedelta(days=6), time(9, 0), tzinfo=zone)
    await services.treatment.schedule(
        staff, patient_id, starts_at=booster, planned_duration_minutes=240, course_id=None, now=now
    )


def _diary(
    rng: random.Random, *, patient_no: int, infusion_days: list[int], zone: ZoneInfo, now: datetime
) -> list[DiaryInput]:
    """Pain that drops after each infusion of a series and drifts back; most evenings logged."""
    baseline = rng.uniform(6.0, 8.5)
    response = rng.uniform(0.2, 0.6)  # share of pain relieved at best
    today = now.astimezone(zone).date()
    entries = []
    for days_ago in range(DAYS, 0, -1):
        if rng.random() < 0.12:
            continue  # a missed day, as real diaries have
        day = today - timedelta(days=days_ago)
        day_no = DAYS - days_ago
        relief = max((response * (0.85 ** (day_no - d)) for d in infusion_days if d <= day_no), default=0.0)
        pain = min(10.0, max(0.0, baseline * (1 - relief) + rng.gauss(0, 0.7)))
        local = datetime.combine(day, time(20, rng.randint(0, 59)), tzinfo=zone)
        after_infusion = any(0 <= day_no - d <= 1 for d in infusion_days)
        entries.append(
            DiaryInput(
                client_id=uuid5(NAMESPACE, f"{patient_no}:{day.isoformat()}"),
                recorded_at=local,
                pain_now=round(pain),
                pain_worst=min(10, round(pain + rng.uniform(0.5, 2))),
                pain_average=round(pain),
                pain_locations=rng.sample(list(BodyRegion), k=rng.randint(1, 3)),
                sleep_hours=round(rng.uniform(4.5, 8.5) * 4) / 4,
                sleep_quality=max(0, min(10, round(10 - pain + rng.gauss(0, 1)))),
                mood=max(0, min(10, round(9 - pain * 0.6 + rng.gauss(0, 1)))),
                side_effects=[SideEffectReport(SideEffect.NAUSEA, rng.randint(1, 2))] if after_infusion else [],
                rescue_medication=pain >= 7 and rng.random() < 0.5,
            )
        )
    return entries


async def _questionnaires(
    services: Services, patient: Actor, rng: random.Random, *, patient_no: int, infusion_days: list[int], now: datetime
) -> int:
    """PHQ-9 and GAD-7 every two weeks, and PGIC a week after the induction series. One patient's latest PHQ-9
    endorses item 9, so the demo clinic has a critical alert and the crisis message to show."""
    submitted = 0
    for days_ago in range(DAYS - 2, 0, -14):
        at = now - timedelta(days=days_ago, hours=rng.randint(0, 5))
        strain = rng.uniform(0.2, 1.6)
        for instrument, items in (("phq9", 9), ("gad7", 7)):
            values = [min(3, max(0, round(rng.gauss(strain, 0.8)))) for _ in range(items)]
            if instrument == "phq9":
                values[8] = 1 if patient_no == 3 and days_ago < 14 else 0
            answers = [(f"{instrument}_{i + 1}", v) for i, v in enumerate(values)]
            client_id = uuid5(NAMESPACE, f"{patient_no}:{instrument}:{days_ago}")
            await services.questionnaires.submit(patient, QuestionnaireInput(client_id, instrument, answers), now=at)
            submitted += 1
    course_end = DAYS - infusion_days[4] - 7
    if course_end > 0:
        answer = [("pgic", rng.choice((2, 3, 3, 4)))]
        client_id = uuid5(NAMESPACE, f"{patient_no}:pgic")
        at = now - timedelta(days=course_end)
        await services.questionnaires.submit(patient, QuestionnaireInput(client_id, "pgic", answer), now=at)
        submitted += 1
    return submitted


def _infusion_days(rng: random.Random) -> list[int]:
    """An induction series of five sessions in two weeks, then a booster about six weeks later."""
    start = rng.randint(8, 14)
    series = [start + offset for offset in (0, 2, 4, 7, 9)]
    return [*series, start + rng.randint(40, 50)]
