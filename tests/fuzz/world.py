"""The seeded world the fuzzer runs in: two clinics, and in each patients with data a stranger must never see.

Clinic 1 holds patient A (the fuzzing patient), patient B and the fuzzing clinician; clinic 2 holds patient C and
its own staff. B's and C's free text, names and emails carry marker strings; every id of a row they own is
collected. What a caller must never see is a `Secrets`: markers plus ids, and the ids by kind, to aim the fuzzer's
ID arguments at objects that exist but are not the caller's.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from tortoise import Tortoise
from tortoise.models import Model
from tortoise.queryset import QuerySet

import tests.conftest
from api.container import build_job_config
from api.domain.account.models import Account, Clinic
from api.domain.account.tokens import AccessTokens
from api.domain.actor import Actor, Role
from api.domain.alert.models import Alert
from api.domain.diary.models import DiaryEntry
from api.domain.diary.validation import SideEffectReport
from api.domain.diary.vocabulary import SideEffect
from api.domain.patient.models import Patient, PatientStatus
from api.domain.prompt.models import Prompt, PromptPlan
from api.domain.push import devices
from api.domain.push.models import Device, ProviderName
from api.domain.questionnaire.models import QuestionnaireResponse
from api.domain.questionnaire.service import QuestionnaireInput
from api.domain.services import Services
from api.domain.treatment.models import InfusionSession, SessionStatus, TreatmentCourse
from api.domain.treatment.service import SessionChange
from jobs import passes
from tests.factories import Factory, PatientUser, Staff

# An ID argument's kind → the model whose ids it takes.
KIND_MODELS: dict[str, type[Model]] = {
    "patient": Patient,
    "account": Account,
    "entry": DiaryEntry,
    "prompt": Prompt,
    "session": InfusionSession,
    "course": TreatmentCourse,
    "alert": Alert,
    "response": QuestionnaireResponse,
    "plan": PromptPlan,
    "device": Device,
}
# Ids of one kind aimed at the fuzzer: enough to reach every code path, few enough to stay fast.
POOL_PER_KIND = 4


@dataclass
class Secrets:
    """What a caller must never see: marker strings and the ids of rows that are not theirs."""

    markers: tuple[str, ...]
    ids: frozenset[str]
    pool: dict[str, list[str]] = field(default_factory=dict)

    def merged(self, other: Secrets) -> Secrets:
        pool = {k: self.pool.get(k, []) + other.pool.get(k, []) for k in sorted({*self.pool, *other.pool})}
        return Secrets(self.markers + other.markers, self.ids | other.ids, pool)


@dataclass(frozen=True)
class Owner:
    """Rows someone else owns: a patient's (and their profile and account), or a whole clinic's."""

    clinic_id: UUID | None = None
    patient: PatientUser | None = None


@dataclass
class Caller:
    name: str
    actor: Actor
    token: str
    # Never in a response to this caller, unless the request itself sent it.
    hidden: Secrets
    # Objects the caller may reach, to fuzz deeper than "not found".
    own: dict[str, list[str]]
    # Whose rows this caller can never change.
    strangers: tuple[Owner, ...]


@dataclass
class World:
    patient: Caller
    clinician: Caller
    admin: Caller
    # A, B and C.
    patients: tuple[PatientUser, ...]

    @property
    def callers(self) -> dict[str, Caller]:
        return {c.name: c for c in (self.patient, self.clinician, self.admin)}

    async def intact(self) -> bool:
        """False once one of the three patients is no longer active: the next test would fuzz a caller who is
        gone, or look for the markers of data no longer there."""
        ids = [p.patient.id for p in self.patients]
        return await Patient.filter(id__in=ids, status=PatientStatus.ACTIVE).count() == len(ids)


async def seed(factory: Factory, services: Services, now: datetime) -> World:
    home, away = await factory.clinic("Fuzz Home"), await factory.clinic("MARKER-C-clinic")
    clinician, admin = await factory.staff(home), await factory.staff(home, Role.ADMIN)
    away_staff = await factory.staff(away, email=f"marker-c-staff-{uuid4().hex[:6]}@clinic.test")
    a = await factory.patient(home, name="Fuzz Patient A")
    b = await _marked_patient(factory, home, "B")
    c = await _marked_patient(factory, away, "C")
    for who, staff in ((a, clinician), (b, clinician), (c, away_staff)):
        await _history(factory, services, staff, who, now)
    # Release what has come due, as the jobs would: prompts become SENT, alerts may escalate.
    await passes.tick(build_job_config(tests.conftest.make_settings()), now)

    hidden_from_staff = await _of_clinic(away.id, "MARKER-C")
    hidden_from_a = (await _owned_by(b, "MARKER-B")).merged(hidden_from_staff)
    home_pool = await _pool(clinic_id=home.id)
    strangers = (Owner(patient=b), Owner(clinic_id=away.id))

    def caller(
        name: str, actor: Actor, hidden: Secrets, own: dict[str, list[str]], others: tuple[Owner, ...]
    ) -> Caller:
        return Caller(name, actor, _token(services.accounts.tokens, actor, now), hidden, own, others)

    return World(
        patient=caller("patient", a.actor, hidden_from_a, await _own(a), strangers),
        clinician=caller("clinician", clinician.actor, hidden_from_staff, home_pool, strangers[1:]),
        admin=caller("admin", admin.actor, hidden_from_staff, home_pool, strangers[1:]),
        patients=(a, b, c),
    )


async def fingerprint(owners: tuple[Owner, ...]) -> str:
    """A digest of every row these owners hold: equal before and after means nothing of theirs changed."""
    digest = hashlib.sha256()
    for model in _models():
        for query in await _rows_of(model, owners):
            for row in await query.order_by("id").values():
                digest.update(json.dumps(row, default=str, sort_keys=True).encode())
    return digest.hexdigest()


async def _rows_of(model: type[Model], owners: tuple[Owner, ...]) -> list[QuerySet[Any]]:
    """A clinic's rows, and any row (of any clinic) about one of its patients; a patient's rows, profile and
    account."""
    fields = model._meta.fields_map
    queries: list[QuerySet[Any]] = []
    for owner in owners:
        if owner.clinic_id is not None:
            if "clinic_id" in fields:
                queries.append(model.filter(clinic_id=owner.clinic_id))
            if "patient_id" in fields:
                patients = Patient.filter(clinic_id=owner.clinic_id).values_list("id", flat=True)
                queries.append(model.filter(patient_id__in=list(await patients)))
        if owner.patient is not None:
            if "patient_id" in fields:
                queries.append(model.filter(patient_id=owner.patient.patient.id))
            if model is Patient:
                queries.append(model.filter(id=owner.patient.patient.id))
            if model is Account:
                queries.append(model.filter(id=owner.patient.account.id))
    return queries


async def _marked_patient(factory: Factory, clinic: Clinic, mark: str) -> PatientUser:
    tag = uuid4().hex[:6]
    return await factory.patient(
        clinic, name=f"MARKER-{mark}-{tag} Doe", email=f"marker-{mark.lower()}-{tag}@example.test"
    )


async def _history(factory: Factory, services: Services, staff: Staff, who: PatientUser, now: datetime) -> None:
    """A completed infusion with notes, one booked, diary entries (one severe side effect), a PHQ-9 that flags
    self-harm (a critical alert) and a GAD-7, a device, and an acknowledged alert with a note."""
    mark = who.patient.display_name.split(" ")[0]
    ended = now - timedelta(hours=30)
    booked = await services.treatment.schedule(
        staff.actor, who.patient.id, starts_at=ended - timedelta(hours=1), planned_duration_minutes=60,
        course_id=None, now=ended - timedelta(days=2),
    )  # fmt: skip
    done = SessionChange(status=SessionStatus.COMPLETED, ended_at=ended, dose_mg=35.5, notes=f"{mark} session note")
    await services.treatment.update(staff.actor, booked.id, done, now=now - timedelta(hours=29))
    await services.treatment.schedule(
        staff.actor, who.patient.id, starts_at=now + timedelta(days=3), planned_duration_minutes=90,
        course_id=None, now=now - timedelta(hours=2),
    )  # fmt: skip
    for hours, pain in ((3, 6), (26, 4), (50, 7)):
        await factory.entry(
            who, recorded_at=now - timedelta(hours=hours), pain_average=pain, note=f"{mark} felt {pain}", mood=5
        )
    await factory.entry(
        who,
        recorded_at=now - timedelta(hours=5),
        side_effects=[SideEffectReport(SideEffect.CHEST_PAIN, 3)],
        note=f"{mark} chest",
    )
    phq9 = [(f"phq9_{n}", 1 if n == 9 else 0) for n in range(1, 10)]
    await services.questionnaires.submit(who.actor, QuestionnaireInput(uuid4(), "phq9", phq9), now=now)
    gad7 = [(f"gad7_{n}", 1) for n in range(1, 8)]
    await services.questionnaires.submit(who.actor, QuestionnaireInput(uuid4(), "gad7", gad7), now=now)
    await devices.register(who.actor, ProviderName.FCM, f"{mark}-device-{uuid4().hex}", "android", now=now)
    first = await Alert.filter(patient_id=who.patient.id).order_by("raised_at", "id").first()
    assert first is not None
    await services.alerts.acknowledge(staff.actor, first.id, f"{mark} called back", now=now)


def _token(tokens: AccessTokens, actor: Actor, now: datetime) -> str:
    assert actor.account_id is not None
    token, _ = tokens.issue(
        account_id=actor.account_id, role=actor.role, clinic_id=actor.clinic_id, patient_id=actor.patient_id, now=now
    )
    return token


def _models() -> list[type[Model]]:
    return [m for app in Tortoise.apps.values() for m in app.values()]


async def _owned_by(who: PatientUser, marker: str) -> Secrets:
    """Every row of one patient: their profile and account, and every row that names them."""
    ids = {str(who.patient.id), str(who.account.id)}
    for model in _models():
        if "patient_id" in model._meta.fields_map:
            ids |= {str(i) for i in await model.filter(patient_id=who.patient.id).values_list("id", flat=True)}
    return Secrets((marker,), frozenset(ids), await _pool(patient_id=who.patient.id))


async def _of_clinic(clinic_id: UUID, marker: str) -> Secrets:
    """Every row of a clinic, and the clinic itself."""
    ids = {str(clinic_id)}
    for model in _models():
        if "clinic_id" in model._meta.fields_map:
            ids |= {str(i) for i in await model.filter(clinic_id=clinic_id).values_list("id", flat=True)}
    return Secrets((marker,), frozenset(ids), await _pool(clinic_id=clinic_id))


async def _own(who: PatientUser) -> dict[str, list[str]]:
    return await _pool(patient_id=who.patient.id) | {"patient": [str(who.patient.id)]}


async def _pool(**owner: UUID) -> dict[str, list[str]]:
    pool: dict[str, list[str]] = defaultdict(list)
    for kind, model in KIND_MODELS.items():
        if "patient_id" in owner and "patient_id" not in model._meta.fields_map:
            if model is Patient:
                pool[kind].append(str(owner["patient_id"]))
            continue
        rows = await model.filter(**owner).order_by("id").limit(POOL_PER_KIND).values_list("id", flat=True)
        pool[kind] += [str(i) for i in rows]
    return dict(pool)
