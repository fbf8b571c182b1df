"""Raising an alert: one open alert per (patient, rule, episode), however many records or replicas trigger it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from api.domain.alert.models import Alert, AlertEvent
from api.domain.alert.rules import Rule


@dataclass(frozen=True)
class Trigger:
    """A record that made a rule fire: DiaryEntry, QuestionnaireResponse or TreatmentCourse."""

    type: str
    id: UUID

    def as_json(self, at: datetime) -> dict[str, Any]:
        return {"type": self.type, "id": str(self.id), "at": at.isoformat()}


@dataclass(frozen=True)
class Finding:
    rule: Rule
    episode: str
    trigger: Trigger
    details: dict[str, Any]


def open_key(patient_id: UUID, rule_id: str, episode: str) -> str:
    return f"{patient_id}:{rule_id}:{episode}"


async def raise_alert(
    clinic_id: UUID,
    patient_id: UUID,
    finding: Finding,
    *,
    settings_version: int,
    now: datetime,
    conn: BaseDBAsyncClient,
) -> Alert | None:
    """The new alert, or None when the episode already had one open (the trigger is then appended to it).

    Runs inside the caller's transaction. The insert comes first, in a savepoint: the unique open key decides,
    so two transactions raising the same episode at once leave one alert, the later one appending its trigger.
    """
    key = open_key(patient_id, finding.rule.id, finding.episode)
    # Twice at most: the open alert we collided with may be resolved before we read it, freeing the key.
    for _ in range(2):
        try:
            # A savepoint on the caller's connection: on PostgreSQL a failed insert would otherwise abort the
            # caller's whole transaction.
            async with conn._in_transaction():
                alert = await Alert.create(
                    clinic_id=clinic_id,
                    patient_id=patient_id,
                    rule_id=finding.rule.id,
                    rule_version=finding.rule.version,
                    severity=finding.rule.severity,
                    episode=finding.episode,
                    open_key=key,
                    triggers=[finding.trigger.as_json(now)],
                    details={**finding.details, "settings_version": settings_version},
                    raised_at=now,
                    updated_at=now,
                    using_db=conn,
                )
                await AlertEvent.create(alert_id=alert.id, action="raised", at=now, using_db=conn)
            return alert
        except IntegrityError:
            current = await Alert.filter(open_key=key).select_for_update().using_db(conn).first()
            if current is not None:
                await _retrigger(current, finding.trigger, now, conn)
                return None
    return None


async def _retrigger(alert: Alert, trigger: Trigger, now: datetime, conn: BaseDBAsyncClient) -> None:
    # The same record seen again (an edited entry, a job's next pass) adds nothing.
    if any(t.get("type") == trigger.type and t.get("id") == str(trigger.id) for t in alert.triggers):
        return
    alert.triggers = [*alert.triggers, trigger.as_json(now)]
    alert.updated_at = now
    await alert.save(using_db=conn, update_fields=["triggers", "updated_at"])
    await AlertEvent.create(alert_id=alert.id, action="retriggered", at=now, using_db=conn)
