"""Push targets and the outbox: one PushMessage row per device per send attempt series."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID, uuid4

from tortoise import fields
from tortoise.models import Model

from api.domain.account.models import Clinic
from api.domain.patient.models import Patient
from api.domain.prompt.models import Prompt


class ProviderName(StrEnum):
    FCM = "FCM"
    APNS = "APNS"
    WEBPUSH = "WEBPUSH"
    EXPO = "EXPO"


class MessageStatus(StrEnum):
    PENDING = "PENDING"  # waiting for its next attempt
    CLAIMED = "CLAIMED"  # a dispatcher holds it until lease_until; after that anyone may retry it
    ACCEPTED = "ACCEPTED"  # the provider took it
    DEAD_TOKEN = "DEAD_TOKEN"  # noqa: S105 -- a status, not a secret. The provider says the device is gone; the device is disabled
    FAILED = "FAILED"  # permanent failure, or retries exhausted
    DROPPED = "DROPPED"  # the prompt was answered, expired or cancelled before the send


class Device(Model):
    id = fields.UUIDField(primary_key=True, default=uuid4)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "models.Clinic", related_name="devices", on_delete=fields.RESTRICT
    )
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "models.Patient", related_name="devices", on_delete=fields.CASCADE
    )
    provider = fields.CharEnumField(ProviderName, max_length=16)
    # The token is needed to send, so it is stored; it is looked up and logged only by its hash.
    token = fields.TextField()
    token_hash = fields.CharField(max_length=64)
    platform = fields.CharField(max_length=32, null=True)
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()
    disabled_at = fields.DatetimeField(null=True)
    disabled_reason = fields.CharField(max_length=64, null=True)

    clinic_id: UUID
    patient_id: UUID

    class Meta:
        table = "device"
        unique_together = (("provider", "token_hash"),)


class PushMessage(Model):
    id = fields.UUIDField(primary_key=True, default=uuid4)
    clinic_id = fields.UUIDField()
    prompt: fields.ForeignKeyRelation[Prompt] = fields.ForeignKeyField(
        "models.Prompt", related_name="push_messages", on_delete=fields.CASCADE
    )
    device: fields.ForeignKeyRelation[Device] = fields.ForeignKeyField(
        "models.Device", related_name="push_messages", on_delete=fields.CASCADE
    )
    # 0 for the first send, 1 and 2 for reminders: with prompt and device, one row per send.
    sequence = fields.SmallIntField(default=0)
    status = fields.CharEnumField(MessageStatus, max_length=16, default=MessageStatus.PENDING)
    attempts = fields.SmallIntField(default=0)
    next_attempt_at = fields.DatetimeField()
    lease_until = fields.DatetimeField(null=True)
    provider_message_id = fields.CharField(max_length=200, null=True)
    error_class = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    # Expo: a ticket is not a delivery; its receipt is fetched later and may still say the device is gone.
    receipt_checked_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField()

    prompt_id: UUID
    device_id: UUID

    class Meta:
        table = "push_message"
        unique_together = (("prompt_id", "device_id", "sequence"),)
        indexes = (("status", "next_attempt_at"), ("status", "lease_until"))
