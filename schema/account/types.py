"""Accounts and sessions."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.domain.account.models import Account as AccountModel
from api.domain.account.service import Session
from api.domain.actor import Role as DomainRole
from api.domain.patient.models import Patient as PatientModel
from schema.context import Info
from schema.ids import to_id
from schema.patient.types import Patient

Role = strawberry.enum(DomainRole)


@strawberry.type
class Account:
    id: strawberry.ID
    email: str | None
    role: Role  # type: ignore[valid-type]
    _model: strawberry.Private[AccountModel]
    # Known already when a session was just opened: that request has no signed-in actor to load it with.
    _patient: strawberry.Private[PatientModel | None] = None

    @classmethod
    def from_model(cls, a: AccountModel, patient: PatientModel | None = None) -> Account:
        return cls(id=to_id(a.id), email=a.email, role=a.role, _model=a, _patient=patient)

    @strawberry.field(description="The patient profile, for a patient account.")
    async def patient(self, info: Info) -> Patient | None:
        if self._model.role is not DomainRole.PATIENT:
            return None
        patient = self._patient or await info.context.loaders.patient_of_account.load(self._model.id)
        return Patient.from_model(patient) if patient else None


@strawberry.type
class AuthPayload:
    access_token: str
    refresh_token: str
    expires_at: datetime = strawberry.field(description="When the access token expires.")
    account: Account

    @classmethod
    def from_session(cls, s: Session) -> AuthPayload:
        return cls(
            access_token=s.access_token,
            refresh_token=s.refresh_token,
            expires_at=s.expires_at,
            account=Account.from_model(s.account, s.patient),
        )
