"""Shared by the erasure tests (no tests here): a clinic with a patient who holds a record of every kind, another
patient who must stay untouched, and a dump of every table to search for what must be gone or compare before and
after a refusal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from tortoise import Tortoise

from api.domain.account.models import Clinic
from api.domain.account.tokens import sha256_hex
from api.domain.actor import Role
from api.domain.alert.models import Alert, AlertStatus
from api.domain.diary.models import DiaryEntry
from api.domain.diary.validation import SideEffectReport
from api.domain.diary.vocabulary import SideEffect
from api.domain.errors import Unauthenticated
from api.domain.patient.erasure import ErasureService
from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.prompt.scheduling import replan
from api.domain.push import devices
from api.domain.push.models import Device, MessageStatus, ProviderName, PushMessage
from api.domain.questionnaire.models import QuestionnaireResponse
from api.domain.services import Services
from api.domain.treatment.models import InfusionSession, SessionStatus
from api.domain.treatment.service import SessionChange
from tests.factories import Factory, PatientUser, Staff

ALICE = "Alice Erasable"
ALICE_EMAIL = "alice.erasable@example.test"
ALICE_TOKEN = "fcm-token-of-alices-phone-0123456789"
RETENTION = timedelta(days=3650)


@dataclass
class World:
    clinic: Clinic
    admin: Staff
    clinician: Staff
    alice: PatientUser
    bob: PatientUser
    device: Device
    latest_entry: DiaryEntry
    response: QuestionnaireResponse
    session: InfusionSession

    @property
    def identifying(self) -> list[str]:
        """What identifies or reaches Alice, in the clear or as the hashes we store them by."""
        return [
            ALICE,
            ALICE.lower(),
            ALICE_EMAIL,
            sha256_hex(ALICE_EMAIL),
            sha256_hex(ALICE_EMAIL)[:40],
            ALICE_TOKEN,
            sha256_hex(ALICE_TOKEN),
        ]


async def world(factory: Factory, services: Services, now: datetime) -> World:
    """Alice has a failed login behind her, a device, prompts (one sent, with a delivered push and a pending
    reminder), diary entries (one edited, one raising an alert), a questionnaire response and a completed session,
    plus a session to come."""
    clinic = await factory.clinic()
    admin = await factory.staff(clinic, Role.ADMIN)
    clinician = await factory.staff(clinic)
    alice = await factory.patient(clinic, name=ALICE, email=ALICE_EMAIL)
    bob = await factory.patient(clinic, name="Bob Stays")
    with pytest.raises(Unauthenticated):  # leaves a throttle bucket keyed by a hash of her email
        await services.accounts.login(ALICE_EMAIL, "a mistyped password", ip=None, now=now)
    device = await devices.register(alice.actor, ProviderName.FCM, ALICE_TOKEN, "android", now=now)
    await devices.register(bob.actor, ProviderName.FCM, "bobs-token", "android", now=now)
    treatment = services.treatment
    session = await treatment.schedule(
        clinician.actor, alice.patient.id, starts_at=now - timedelta(days=5), planned_duration_minutes=240,
        course_id=None, now=now - timedelta(days=6),
    )  # fmt: skip
    started = now - timedelta(days=5)
    done = SessionChange(
        status=SessionStatus.COMPLETED, started_at=started, ended_at=started + timedelta(hours=4), dose_mg=30,
        notes="Calm.",
    )  # fmt: skip
    session = await treatment.update(clinician.actor, session.id, done, now=now - timedelta(days=4))
    await treatment.schedule(
        clinician.actor, alice.patient.id, starts_at=now + timedelta(days=9), planned_duration_minutes=240,
        course_id=None, now=now,
    )  # fmt: skip
    edited = await factory.entry(alice, recorded_at=now - timedelta(days=4), pain_now=6, note="Slept badly.")
    await services.diary.update(alice.actor, edited.id, {"pain_now": 5}, expected_version=None, now=now)
    chest = [SideEffectReport(SideEffect.CHEST_PAIN, 2)]
    latest = await factory.entry(alice, recorded_at=now - timedelta(days=2), side_effects=chest)
    response = await QuestionnaireResponse.create(
        clinic_id=clinic.id, patient_id=alice.patient.id, client_id=uuid4(), client_hash="0" * 64,
        instrument="phq2", instrument_version="1", answers={"phq2_1": 1, "phq2_2": 1}, score=2, band="negative",
        authored_at=now - timedelta(days=3), utc_offset_minutes=-300, created_at=now - timedelta(days=3),
    )  # fmt: skip
    await factory.entry(bob, pain_now=2)
    await replan([alice.patient, bob.patient], services.prompts.scheduling, now=now)
    await _sent_prompt_with_pushes(alice, device, now)
    assert await Alert.filter(patient_id=alice.patient.id).exists()
    return World(clinic, admin, clinician, alice, bob, device, latest, response, session)


async def _sent_prompt_with_pushes(who: PatientUser, device: Device, now: datetime) -> None:
    prompt = await Prompt.filter(patient_id=who.patient.id, status=PromptStatus.SCHEDULED).order_by("due_at").first()
    assert prompt is not None
    prompt.status, prompt.sent_at, prompt.next_reminder_at = PromptStatus.SENT, now, now + timedelta(hours=1)
    await prompt.save()
    for sequence, status in ((0, MessageStatus.ACCEPTED), (1, MessageStatus.PENDING)):
        await PushMessage.create(
            clinic_id=who.patient.clinic_id, prompt_id=prompt.id, device_id=device.id, sequence=sequence,
            status=status, next_attempt_at=now, created_at=now, updated_at=now,
        )  # fmt: skip


async def resolve_alerts(services: Services, w: World, now: datetime) -> None:
    """The clinician resolves every alert of Alice's (her chest pain is CRITICAL: it keeps the record from the
    purge until resolved)."""
    for alert in await Alert.filter(patient_id=w.alice.patient.id).exclude(status=AlertStatus.RESOLVED):
        await services.alerts.resolve(w.clinician.actor, alert.id, "called her", now=now)


def erasure_service(services: Services, retention: timedelta = RETENTION) -> ErasureService:
    return ErasureService(accounts=services.accounts, retention=retention)


async def table_dump() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in a stable order."""
    dump = {}
    for model in Tortoise.apps.get_models_iterable():
        rows = await model.all().order_by(model._meta.pk_attr).values()
        dump[model._meta.db_table] = [{k: _plain(v) for k, v in row.items()} for row in rows]
    return dump


async def stored_text() -> str:
    return json.dumps(await table_dump(), sort_keys=True)


def _plain(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value) if value is not None else None
