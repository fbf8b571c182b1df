"""Patient profiles and the invites that bring a patient in."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID, uuid4

from tortoise import fields
from tortoise.models import Model

from api.domain.account.models import Account, Clinic


class PatientStatus(StrEnum):
    INVITED = "INVITED"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    DISCHARGED = "DISCHARGED"
    ERASED = "ERASED"


class Patient(Model):
    id = fields.UUIDField(primary_key=True, default=uuid4)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "models.Clinic", related_name="patients", on_delete=fields.RESTRICT
    )
    account: fields.OneToOneNullableRelation[Account] = fields.OneToOneField(
        "models.Account", related_name="patient", null=True, on_delete=fields.RESTRICT
    )
    display_name = fields.CharField(max_length=200)
    # Lower-cased copy for search; kept in step by the service that writes display_name.
    search_name = fields.CharField(max_length=200, db_index=True)
    timezone = fields.CharField(max_length=64)
    diary_time = fields.CharField(max_length=5, default="20:00")
    quiet_hours_start = fields.CharField(max_length=5, default="21:30")
    quiet_hours_end = fields.CharField(max_length=5, default="08:00")
    notifications_enabled = fields.BooleanField(default=True)
    status = fields.CharEnumField(PatientStatus, max_length=16, default=PatientStatus.INVITED)
    # The prompt plan family the patient follows (its current version applies) and since when.
    plan_family_id = fields.UUIDField(null=True)
    enrolled_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    activated_at = fields.DatetimeField(null=True)
    # Erasure (GDPR Art. 17): when it was asked for, until when a legal-retention hold keeps the clinical record,
    # and when the record was finally erased.
    erasure_requested_at = fields.DatetimeField(null=True)
    retained_until = fields.DatetimeField(null=True, db_index=True)
    erased_at = fields.DatetimeField(null=True)

    clinic_id: UUID
    account_id: UUID | None

    class Meta:
        table = "patient"
        indexes = (("clinic_id", "search_name"),)


class Invite(Model):
    id = fields.UUIDField(primary_key=True, default=uuid4)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "models.Clinic", related_name="invites", on_delete=fields.RESTRICT
    )
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "models.Patient", related_name="invites", on_delete=fields.CASCADE
    )
    created_by: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="invites_issued", null=True, on_delete=fields.SET_NULL
    )
    # SHA-256 of the code: the code has 80+ bits of entropy, so a fast hash cannot be brute-forced.
    code_hash = fields.CharField(max_length=64, unique=True)
    # SHA-256 of the normalised email the clinician named, if any: registration must use that email.
    email_hash = fields.CharField(max_length=64, null=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    clinic_id: UUID
    patient_id: UUID

    class Meta:
        table = "invite"
