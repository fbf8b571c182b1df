"""A patient's own reports. Entries are never hard-deleted; edits keep the previous version."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from tortoise import fields
from tortoise.models import Model

from api.domain.account.models import Clinic
from api.domain.patient.models import Patient


class DiaryEntry(Model):
    id = fields.UUIDField(primary_key=True, default=uuid4)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "models.Clinic", related_name="diary_entries", on_delete=fields.RESTRICT
    )
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "models.Patient", related_name="diary_entries", on_delete=fields.CASCADE
    )
    client_id = fields.UUIDField()
    # Hash of the payload the entry was created from: a resend is recognised even after later edits.
    client_hash = fields.CharField(max_length=64)
    recorded_at = fields.DatetimeField()
    # The patient's UTC offset when the entry applies, so local-day analysis never guesses.
    utc_offset_minutes = fields.SmallIntField()
    pain_now = fields.SmallIntField(null=True)
    pain_worst = fields.SmallIntField(null=True)
    pain_average = fields.SmallIntField(null=True)
    pain_locations: list[str] = fields.JSONField(default=list)
    # Exact decimal: a float column returned 7.6 h as 7.599999904632568.
    sleep_hours = fields.DecimalField(max_digits=4, decimal_places=2, null=True)
    sleep_quality = fields.SmallIntField(null=True)
    mood = fields.SmallIntField(null=True)
    side_effects: list[dict[str, Any]] = fields.JSONField(default=list)
    rescue_medication = fields.BooleanField(null=True)
    note = fields.TextField(null=True)
    prompt_id = fields.UUIDField(null=True)
    version = fields.IntField(default=1)
    deleted_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    clinic_id: UUID
    patient_id: UUID

    class Meta:
        table = "diary_entry"
        unique_together = (("patient_id", "client_id"),)
        indexes = (("patient_id", "recorded_at", "id"),)


class DiaryEntryRevision(Model):
    """The state of an entry before an edit or deletion, and who made the change."""

    id = fields.UUIDField(primary_key=True, default=uuid4)
    entry: fields.ForeignKeyRelation[DiaryEntry] = fields.ForeignKeyField(
        "models.DiaryEntry", related_name="revisions", on_delete=fields.CASCADE
    )
    version = fields.IntField()
    snapshot: dict[str, Any] = fields.JSONField()
    reason = fields.CharField(max_length=32)
    changed_by_id = fields.UUIDField(null=True)
    changed_at = fields.DatetimeField()

    entry_id: UUID

    class Meta:
        table = "diary_entry_revision"
        unique_together = (("entry_id", "version"),)
