"""Questionnaire responses: answers pinned to one instrument version, with the score computed server-side."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from tortoise import fields
from tortoise.models import Model

from api.domain.account.models import Clinic
from api.domain.patient.models import Patient


class QuestionnaireResponse(Model):
    id = fields.UUIDField(primary_key=True, default=uuid4)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "models.Clinic", related_name="questionnaire_responses", on_delete=fields.RESTRICT
    )
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "models.Patient", related_name="questionnaire_responses", on_delete=fields.CASCADE
    )
    # The phone's idempotency key, and a hash of what it sent: a resend is recognised, a changed resend refused.
    client_id = fields.UUIDField()
    client_hash = fields.CharField(max_length=64)
    instrument = fields.CharField(max_length=32)
    instrument_version = fields.CharField(max_length=16)
    # {item id: published integer code}
    answers: dict[str, int] = fields.JSONField()
    score = fields.SmallIntField(null=True)
    band = fields.CharField(max_length=32, null=True)
    # Further computed values by name (subscales, flags such as "self_harm"), as the definition declares them.
    derived: dict[str, Any] = fields.JSONField(default=dict)
    prompt_id = fields.UUIDField(null=True)
    # When the patient submitted it (the recall period ends here).
    authored_at = fields.DatetimeField()
    utc_offset_minutes = fields.SmallIntField()
    deleted_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    clinic_id: UUID
    patient_id: UUID

    class Meta:
        table = "questionnaire_response"
        unique_together = (("patient_id", "client_id"),)
        indexes = (("patient_id", "instrument", "authored_at"), ("clinic_id", "authored_at"))
