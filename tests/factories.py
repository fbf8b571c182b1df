"""Async factories that build real rows through the domain services, with overrides."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from api.domain.account.models import Account, Clinic
from api.domain.actor import Actor, Role
from api.domain.diary.models import DiaryEntry
from api.domain.diary.validation import DiaryInput
from api.domain.patient.models import Patient
from api.domain.services import Services

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


@dataclass
class Staff:
    account: Account
    actor: Actor
    email: str


@dataclass
class PatientUser:
    patient: Patient
    account: Account
    actor: Actor
    email: str


class Factory:
    def __init__(self, services: Services, now: datetime) -> None:
        self.services = services
        self.now = now

    async def clinic(self, name: str | None = None) -> Clinic:
        return await self.services.accounts.create_clinic(
            name or f"Clinic {next(_seq)}", now=self.now - timedelta(days=400)
        )

    async def staff(self, clinic: Clinic, role: Role = Role.CLINICIAN, email: str | None = None) -> Staff:
        email = email or f"{role.value.lower()}{next(_seq)}@clinic.test"
        account = await self.services.accounts.create_staff(clinic.id, role, email, PASSWORD, now=self.now)
        return Staff(account, Actor(account_id=account.id, role=role, clinic_id=clinic.id), email)

    async def patient(
        self,
        clinic: Clinic,
        *,
        name: str | None = None,
        timezone: str = "America/New_York",
        joined: datetime | None = None,
        email: str | None = None,
    ) -> PatientUser:
        """An invited and registered patient; `joined` is when they registered (default: 60 days ago)."""
        joined = joined or self.now - timedelta(days=60)
        inviter = await self.staff(clinic)
        email = email or f"patient{next(_seq)}@example.test"
        invite = await self.services.patients.invite(
            inviter.actor, display_name=name or f"Patient {next(_seq)}", email=email, timezone=timezone, now=joined
        )
        session = await self.services.patients.register(
            invite_code=invite.code, email=email, password=PASSWORD, timezone=None, ip=None, now=joined
        )
        patient = await Patient.get(id=invite.patient.id)
        actor = Actor(account_id=session.account.id, role=Role.PATIENT, clinic_id=clinic.id, patient_id=patient.id)
        return PatientUser(patient, session.account, actor, email)

    async def entry(self, who: PatientUser, **overrides: Any) -> DiaryEntry:
        values: dict[str, Any] = {"client_id": uuid4(), "recorded_at": self.now - timedelta(hours=1), "pain_now": 5}
        values.update(overrides)
        return await self.services.diary.log(who.actor, DiaryInput(**values), now=self.now)
