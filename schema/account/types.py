"""Accounts, sessions, the second factor and the clinic's sign-in requirements."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.domain.account.models import Account as AccountModel
from api.domain.account.models import Clinic as ClinicModel
from api.domain.account.second_factor import TotpEnrollment as Enrollment
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
    totp_enabled: bool = strawberry.field(description="A confirmed TOTP second factor is asked for at sign-in.")
    _model: strawberry.Private[AccountModel]
    # Known already when a session was just opened: that request has no signed-in actor to load it with.
    _patient: strawberry.Private[PatientModel | None] = None

    @classmethod
    def from_model(cls, a: AccountModel, patient: PatientModel | None = None) -> Account:
        return cls(
            id=to_id(a.id),
            email=a.email,
            role=a.role,
            totp_enabled=a.totp_confirmed_at is not None,
            _model=a,
            _patient=patient,
        )

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
    otp_enrollment_required: bool = strawberry.field(
        description="The clinic requires a second factor this account has not enrolled. Until enrollTotp and "
        "confirmTotp are done this session may use only me, enrollTotp, confirmTotp and logout (FORBIDDEN "
        "otherwise); refreshSession afterwards gives a full session."
    )

    @classmethod
    def from_session(cls, s: Session) -> AuthPayload:
        return cls(
            access_token=s.access_token,
            refresh_token=s.refresh_token,
            expires_at=s.expires_at,
            account=Account.from_model(s.account, s.patient),
            otp_enrollment_required=s.otp_enrollment_required,
        )


@strawberry.type(description="Shown once: add it to an authenticator app, then confirmTotp with a code.")
class TotpEnrollment:
    secret: str = strawberry.field(description="Base32, for typing in by hand.")
    otpauth_uri: str = strawberry.field(description="otpauth:// URI, to show as a QR code.")
    issuer: str

    @classmethod
    def from_model(cls, e: Enrollment) -> TotpEnrollment:
        return cls(secret=e.secret, otpauth_uri=e.otpauth_uri, issuer=e.issuer)


@strawberry.type
class ClinicSecurity:
    require_staff_otp: bool = strawberry.field(
        description="Clinicians and admins must sign in with a TOTP second factor; those without one are asked "
        "to enrol at their next sign-in or session refresh."
    )

    @classmethod
    def from_model(cls, c: ClinicModel) -> ClinicSecurity:
        return cls(require_staff_otp=c.require_staff_otp)
