"""Append-only record of who touched which patient's data. Ids only: never health data."""

from __future__ import annotations

from uuid import UUID, uuid4

from tortoise import fields
from tortoise.models import Model


class AuditEvent(Model):
    id = fields.UUIDField(primary_key=True, default=uuid4)
    # Plain ids, not foreign keys: the trail must outlive erasure of what it points at.
    clinic_id = fields.UUIDField(db_index=True)
    actor_id = fields.UUIDField(null=True)
    actor_role = fields.CharField(max_length=16)
    action = fields.CharField(max_length=64)
    patient_id = fields.UUIDField(null=True)
    object_id = fields.UUIDField(null=True)
    operation = fields.CharField(max_length=100, null=True)
    request_id = fields.CharField(max_length=64, null=True)
    ip = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "audit_event"
        indexes = (("clinic_id", "created_at", "id"), ("patient_id", "created_at"))


class AuditSubject(Model):
    """One row per patient an event covers (a list read covers many)."""

    id = fields.UUIDField(primary_key=True, default=uuid4)
    event: fields.ForeignKeyRelation[AuditEvent] = fields.ForeignKeyField(
        "models.AuditEvent", related_name="subjects", on_delete=fields.CASCADE
    )
    patient_id = fields.UUIDField(db_index=True)

    event_id: UUID

    class Meta:
        table = "audit_subject"
