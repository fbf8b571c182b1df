"""A clinic after a year of use, for the API benchmark: written with bulk inserts, in batches.

One clinic and one clinician. N ACTIVE patients, each with a patient account (no usable password: nobody signs in,
tokens are issued directly), spread over the zones of bench/seed.py, with one diary entry per local evening for the
last `days` days (about 1% of them entered in error), a daily check-in for each of those days (ANSWERED or EXPIRED,
so adherence is real), and three alerts (one open, one acknowledged or resolved, one resolved).

No infusion sessions: an entry written after a completed session makes Interlude read the patient's entries since
(the loss-of-response rule), which the floor would have to mirror. The write case then measures the common path.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from api.domain.account.models import Account, Clinic
from api.domain.actor import Role
from api.domain.alert.models import Alert, AlertStatus, Severity
from api.domain.diary.models import DiaryEntry
from api.domain.patient.models import Patient, PatientStatus
from api.domain.prompt.models import Prompt, PromptStatus
from bench.seed import ZONES

BATCH = 1000
# A hash no password verifies against: the accounts exist for their ids and roles only.
NO_LOGIN = "!bench-account-without-password"
NOTES = ("slept badly", "long day at work", "walked 30 minutes", "headache in the afternoon", "felt calmer today")
ANSWERED_SHARE = 0.8
DELETED_SHARE = 0.01


@dataclass(frozen=True)
class SeededPatient:
    id: UUID
    account_id: UUID
    timezone: str


@dataclass
class SeededClinic:
    clinic_id: UUID
    clinician_id: UUID
    patients: list[SeededPatient] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


async def seed_clinic(patients: int, days: int, *, now: datetime, seed: int = 6) -> SeededClinic:
    rng = random.Random(seed)
    opened = now - timedelta(days=days + 30)
    clinic = await Clinic.create(name="Bench clinic", created_at=opened)
    clinician = await Account.create(
        clinic_id=clinic.id,
        role=Role.CLINICIAN,
        email="bench-clinician@bench.invalid",
        password_hash=NO_LOGIN,
        created_at=opened,
    )
    out = SeededClinic(clinic.id, clinician.id, rows={"diary_entry": 0, "prompt": 0, "alert": 0})
    for start in range(0, patients, BATCH):
        numbers = range(start, min(start + BATCH, patients))
        accounts = [_account(clinic.id, i, opened) for i in numbers]
        rows = [_patient(clinic.id, a, i, opened) for i, a in zip(numbers, accounts, strict=True)]
        await Account.bulk_create(accounts, batch_size=BATCH)
        await Patient.bulk_create(rows, batch_size=BATCH)
        out.patients += [SeededPatient(p.id, a.id, p.timezone) for p, a in zip(rows, accounts, strict=True)]
    for patient in out.patients:
        await _history(clinic.id, patient, days=days, now=now, rng=rng, rows=out.rows)
    return out


async def _history(
    clinic_id: UUID, patient: SeededPatient, *, days: int, now: datetime, rng: random.Random, rows: dict[str, int]
) -> None:
    """One patient's year: written per patient so that no more than a year of rows is ever held."""
    zone = patient.timezone
    baseline = rng.randint(2, 7)
    today = now.astimezone(ZoneInfo(zone)).date()
    evenings = [today - timedelta(days=d) for d in range(days, 0, -1)]
    entries = [_entry(clinic_id, patient.id, _evening(day, zone, rng), baseline, rng) for day in evenings]
    prompts = [_prompt(clinic_id, patient.id, day, zone, rng) for day in evenings]
    alerts = _alerts(clinic_id, patient.id, now, rng)
    await DiaryEntry.bulk_create(entries, batch_size=BATCH)
    await Prompt.bulk_create(prompts, batch_size=BATCH)
    await Alert.bulk_create(alerts, batch_size=BATCH)
    rows["diary_entry"] += len(entries)
    rows["prompt"] += len(prompts)
    rows["alert"] += len(alerts)


def _account(clinic_id: UUID, i: int, opened: datetime) -> Account:
    return Account(
        id=uuid4(),
        clinic_id=clinic_id,
        role=Role.PATIENT,
        email=f"bench-patient-{i:05d}@bench.invalid",
        password_hash=NO_LOGIN,
        created_at=opened,
    )


def _patient(clinic_id: UUID, account: Account, i: int, opened: datetime) -> Patient:
    return Patient(
        id=uuid4(),
        clinic_id=clinic_id,
        account_id=account.id,
        display_name=f"Bench Patient {i:05d}",
        search_name=f"bench patient {i:05d}",
        timezone=ZONES[i % len(ZONES)],
        status=PatientStatus.ACTIVE,
        enrolled_at=opened,
        created_at=opened,
        activated_at=opened,
    )


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _evening(day: date, zone: str, rng: random.Random) -> datetime:
    """Around 8 pm local time, as the daily check-in asks."""
    return datetime.combine(day, time(20), _zone(zone)) + timedelta(minutes=rng.randint(-60, 90))


def _entry(clinic_id: UUID, patient_id: UUID, local: datetime, baseline: int, rng: random.Random) -> DiaryEntry:
    offset = local.utcoffset() or timedelta(0)
    average = _score(baseline + rng.randint(-2, 2))
    recorded = local.astimezone(ZoneInfo("UTC"))
    created = recorded + timedelta(minutes=rng.randint(0, 5))
    return DiaryEntry(
        id=uuid4(),
        clinic_id=clinic_id,
        patient_id=patient_id,
        client_id=uuid4(),
        client_hash=f"{rng.getrandbits(256):064x}",
        recorded_at=recorded,
        utc_offset_minutes=int(offset.total_seconds() // 60),
        pain_now=_score(average + rng.randint(-1, 2)),
        pain_worst=_score(average + rng.randint(0, 3)),
        pain_average=average,
        sleep_hours=Decimal(rng.randint(16, 36)) / 4,
        sleep_quality=rng.randint(2, 9),
        mood=rng.randint(2, 9),
        note=rng.choice(NOTES) if rng.random() < 0.3 else None,
        deleted_at=created + timedelta(hours=1) if rng.random() < DELETED_SHARE else None,
        created_at=created,
        updated_at=created,
    )


def _score(value: int) -> int:
    return max(0, min(10, value))


def _prompt(clinic_id: UUID, patient_id: UUID, day: date, zone: str, rng: random.Random) -> Prompt:
    due = datetime.combine(day, time(20), _zone(zone)).astimezone(ZoneInfo("UTC"))
    answered = rng.random() < ANSWERED_SHARE
    expires = due + timedelta(hours=12)
    return Prompt(
        id=uuid4(),
        clinic_id=clinic_id,
        patient_id=patient_id,
        plan_id=clinic_id,
        rule_id="daily-diary",
        anchor=f"date:{day.isoformat()}",
        instrument="diary",
        due_at=due,
        deliver_at=due,
        expires_at=expires,
        status=PromptStatus.ANSWERED if answered else PromptStatus.EXPIRED,
        sent_at=due,
        answered_at=due + timedelta(minutes=rng.randint(1, 120)) if answered else None,
        expired_at=None if answered else expires,
        created_at=due - timedelta(days=7),
        updated_at=expires,
    )


def _alerts(clinic_id: UUID, patient_id: UUID, now: datetime, rng: random.Random) -> list[Alert]:
    statuses = (AlertStatus.OPEN, rng.choice((AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED)), AlertStatus.RESOLVED)
    alerts = []
    for status in statuses:
        raised = now - timedelta(days=rng.randint(1, 300), minutes=rng.randint(0, 1440))
        episode = f"session:{uuid4()}"
        resolved = status is AlertStatus.RESOLVED
        alerts.append(
            Alert(
                id=uuid4(),
                clinic_id=clinic_id,
                patient_id=patient_id,
                rule_id="loss_of_response",
                rule_version=1,
                severity=rng.choice((Severity.HIGH, Severity.MEDIUM)),
                status=status,
                episode=episode,
                open_key=None if resolved else f"{patient_id}:loss_of_response:{episode}",
                raised_at=raised,
                acknowledged_at=raised + timedelta(hours=2) if status is not AlertStatus.OPEN else None,
                resolved_at=raised + timedelta(days=1) if resolved else None,
                updated_at=raised + timedelta(days=1) if resolved else raised,
            )
        )
    return alerts
