"""Alerts raised by rules on a patient's data, their history, and each clinic's thresholds."""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from tortoise import fields
from tortoise.models import Model

from api.domain.account.models import Clinic
from api.domain.patient.models import Patient


class Severity(StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class AlertStatus(StrEnum):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


class Alert(Model):
    id = fields.UUIDField(primary_key=True, default=uuid4)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "models.Clinic", related_name="alerts", on_delete=fields.RESTRICT
    )
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "models.Patient", related_name="alerts", on_delete=fields.CASCADE
    )
    rule_id = fields.CharField(max_length=64)
    rule_version = fields.IntField()
    severity = fields.CharEnumField(Severity, max_length=16)
    status = fields.CharEnumField(AlertStatus, max_length=16, default=AlertStatus.OPEN)
    # What the episode is anchored to, e.g. "session:<id>", "course:<id>" or "patient".
    episode = fields.CharField(max_length=80)
    # Set while the alert is open or acknowledged, NULL once resolved. Unique, so a rule raises one alert per
    # episode however many records trigger it or however many replicas evaluate it at once.
    open_key = fields.CharField(max_length=200, null=True, unique=True)
    # [{"type": "DiaryEntry" | "QuestionnaireResponse" | ..., "id": "<uuid>"}], in the order they arrived.
    triggers: list[dict[str, Any]] = fields.JSONField(default=list)
    # Rule-specific facts for the clinician (thresholds met, values seen); never shown outside the clinic.
    details: dict[str, Any] = fields.JSONField(default=dict)
    raised_at = fields.DatetimeField()
    acknowledged_at = fields.DatetimeField(null=True)
    acknowledged_by_id = fields.UUIDField(null=True)
    resolved_at = fields.DatetimeField(null=True)
    resolved_by_id = fields.UUIDField(null=True)
    escalated_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField()

    clinic_id: UUID
    patient_id: UUID

    class Meta:
        table = "alert"
        indexes = (("clinic_id", "status", "raised_at"), ("patient_id", "raised_at"), ("status", "severity"))


class AlertEvent(Model):
    """One step in an alert's history: raised, retriggered, acknowledged, escalated, resolved."""

    id = fields.UUIDField(primary_key=True, default=uuid4)
    alert: fields.ForeignKeyRelation[Alert] = fields.ForeignKeyField(
        "models.Alert", related_name="events", on_delete=fields.CASCADE
    )
    action = fields.CharField(max_length=32)
    actor_id = fields.UUIDField(null=True)
    note = fields.TextField(null=True)
    at = fields.DatetimeField()

    alert_id: UUID

    class Meta:
        table = "alert_event"
        indexes = (("alert_id", "at"),)


class ClinicAlertSettings(Model):
    """A clinic's overrides of the default alert thresholds, escalation delay and crisis resources."""

    id = fields.UUIDField(primary_key=True, default=uuid4)
    clinic: fields.OneToOneRelation[Clinic] = fields.OneToOneField(
        "models.Clinic", related_name="alert_settings", on_delete=fields.CASCADE
    )
    # {"<rule id>": {"<parameter>": value, "enabled": bool}}; absent keys take the defaults.
    thresholds: dict[str, Any] = fields.JSONField(default=dict)
    escalation_minutes = fields.IntField(null=True)
    crisis_message = fields.TextField(null=True)
    version = fields.IntField(default=1)
    updated_at = fields.DatetimeField()
    updated_by_id = fields.UUIDField(null=True)

    clinic_id: UUID

    class Meta:
        table = "clinic_alert_settings"
