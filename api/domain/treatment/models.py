"""Infusion series: a course of sessions for one patient. Clinic-side data."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID, uuid4

from tortoise import fields
from tortoise.models import Model

from api.domain.account.models import Clinic
from api.domain.patient.models import Patient


class CourseStatus(StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"


class SessionStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class TreatmentCourse(Model):
    id = fields.UUIDField(primary_key=True, default=uuid4)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "models.Clinic", related_name="courses", on_delete=fields.RESTRICT
    )
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "models.Patient", related_name="courses", on_delete=fields.CASCADE
    )
    indication = fields.CharField(max_length=200, null=True)
    status = fields.CharEnumField(CourseStatus, max_length=16, default=CourseStatus.ACTIVE)
    created_at = fields.DatetimeField()

    clinic_id: UUID
    patient_id: UUID

    class Meta:
        table = "treatment_course"


class InfusionSession(Model):
    id = fields.UUIDField(primary_key=True, default=uuid4)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "models.Clinic", related_name="sessions", on_delete=fields.RESTRICT
    )
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "models.Patient", related_name="sessions", on_delete=fields.CASCADE
    )
    course: fields.ForeignKeyRelation[TreatmentCourse] = fields.ForeignKeyField(
        "models.TreatmentCourse", related_name="sessions", on_delete=fields.CASCADE
    )
    starts_at = fields.DatetimeField()
    planned_duration_minutes = fields.IntField()
    status = fields.CharEnumField(SessionStatus, max_length=16, default=SessionStatus.SCHEDULED)
    started_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    dose_mg = fields.DecimalField(max_digits=7, decimal_places=2, null=True)
    notes = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    clinic_id: UUID
    patient_id: UUID
    course_id: UUID

    class Meta:
        table = "infusion_session"
        indexes = (("patient_id", "starts_at"),)
