"""Prompt plans (versioned templates of rules) and the prompts materialised from them."""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from tortoise import fields
from tortoise.models import Model

from api.domain.account.models import Clinic
from api.domain.patient.models import Patient


class PromptStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    OPENED = "OPENED"
    ANSWERED = "ANSWERED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


OPEN_STATUSES = (PromptStatus.SENT, PromptStatus.DELIVERED, PromptStatus.OPENED)


class PromptPlan(Model):
    """One version of a clinic's plan. A change writes a new version, and enrolled patients move to it."""

    id = fields.UUIDField(primary_key=True, default=uuid4)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "models.Clinic", related_name="prompt_plans", on_delete=fields.RESTRICT
    )
    # Versions of one plan share a family id.
    family_id = fields.UUIDField()
    name = fields.CharField(max_length=200)
    version = fields.IntField()
    is_default = fields.BooleanField(default=False)
    is_current = fields.BooleanField(default=True)
    rules: list[dict[str, Any]] = fields.JSONField()
    created_at = fields.DatetimeField()

    clinic_id: UUID

    class Meta:
        table = "prompt_plan"
        unique_together = (("family_id", "version"),)


class Prompt(Model):
    id = fields.UUIDField(primary_key=True, default=uuid4)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "models.Clinic", related_name="prompts", on_delete=fields.RESTRICT
    )
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "models.Patient", related_name="prompts", on_delete=fields.CASCADE
    )
    plan_id = fields.UUIDField()
    rule_id = fields.CharField(max_length=64)
    # With patient and rule, the key that makes planning idempotent: "date:2026-11-26", "session:<id>", "course:<id>".
    anchor = fields.CharField(max_length=64)
    session_id = fields.UUIDField(null=True)
    instrument = fields.CharField(max_length=32)
    due_at = fields.DatetimeField()
    # When the prompt is delivered: due_at, or the end of quiet hours. False `push`: listed and answerable
    # but never pushed (the window closes inside quiet hours, notifications are off, or there is no device).
    deliver_at = fields.DatetimeField()
    push = fields.BooleanField(default=True)
    expires_at = fields.DatetimeField()
    respects_quiet_hours = fields.BooleanField(default=True)
    reminder_minutes: list[int] = fields.JSONField(default=list)
    status = fields.CharEnumField(PromptStatus, max_length=16, default=PromptStatus.SCHEDULED)
    late = fields.BooleanField(default=False)
    reminders_sent = fields.SmallIntField(default=0)
    next_reminder_at = fields.DatetimeField(null=True)
    sent_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    opened_at = fields.DatetimeField(null=True)
    answered_at = fields.DatetimeField(null=True)
    expired_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    clinic_id: UUID
    patient_id: UUID

    class Meta:
        table = "prompt"
        unique_together = (("patient_id", "rule_id", "anchor"),)
        indexes = (("status", "deliver_at"), ("status", "expires_at"), ("patient_id", "due_at"))
