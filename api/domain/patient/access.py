"""The one place that decides whether an actor may reach a patient's data."""

from __future__ import annotations

from uuid import UUID

from api.domain.actor import Actor, Role
from api.domain.errors import Forbidden, NotFound
from api.domain.patient.models import Patient, PatientStatus


async def reachable_patient(actor: Actor, patient_id: UUID) -> Patient:
    """The patient if the actor may see them; otherwise NOT_FOUND, exactly as for a missing id."""
    if actor.is_patient and actor.patient_id != patient_id:
        raise NotFound("patient")
    patient = await Patient.get_or_none(id=patient_id, clinic_id=actor.clinic_id)
    if patient is None or patient.status is PatientStatus.ERASED:
        raise NotFound("patient")
    return patient


def require_staff(actor: Actor) -> None:
    if not actor.is_staff:
        raise Forbidden("clinic staff only")


def require_patient(actor: Actor) -> UUID:
    if actor.role is not Role.PATIENT or actor.patient_id is None:
        raise Forbidden("patients only")
    return actor.patient_id
