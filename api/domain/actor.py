"""Who is acting. Every service that touches patient data takes an `Actor` first."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID


class Role(StrEnum):
    PATIENT = "PATIENT"
    CLINICIAN = "CLINICIAN"
    ADMIN = "ADMIN"
    SYSTEM = "SYSTEM"


@dataclass
class RequestMeta:
    """Where a request came from; carried into audit events. One instance per request."""

    request_id: str = ""
    ip: str | None = None
    operation: str | None = None
    # Patients already covered by an audit event in this request: one event per operation and patient.
    audited_patients: set[UUID] = field(default_factory=set)


@dataclass(frozen=True)
class Actor:
    account_id: UUID | None
    role: Role
    clinic_id: UUID
    patient_id: UUID | None = None
    meta: RequestMeta = field(default_factory=RequestMeta, compare=False)

    @classmethod
    def system(cls, clinic_id: UUID, meta: RequestMeta | None = None) -> Actor:
        return cls(account_id=None, role=Role.SYSTEM, clinic_id=clinic_id, meta=meta or RequestMeta())

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.CLINICIAN, Role.ADMIN)

    @property
    def is_patient(self) -> bool:
        return self.role is Role.PATIENT
