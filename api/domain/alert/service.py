"""Raising, listing, acknowledging, resolving and escalating alerts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from api.domain.alert.broker import AlertBroker, AlertNotice
from api.domain.alert.models import Alert
from api.domain.diary.models import DiaryEntry
from api.domain.patient.models import Patient
from api.domain.questionnaire.models import QuestionnaireResponse


@dataclass(frozen=True)
class AlertPolicy:
    escalation_delay: timedelta
    crisis_message: str


class AlertService:
    def __init__(self, policy: AlertPolicy, broker: AlertBroker) -> None:
        self.policy = policy
        self.broker = broker

    async def on_entry(
        self, patient: Patient, entry: DiaryEntry, *, now: datetime, using_db: BaseDBAsyncClient
    ) -> list[Alert]:
        """Rules that read diary entries, in the transaction that stored `entry`. Publish after commit."""
        return []

    async def on_response(
        self, patient: Patient, response: QuestionnaireResponse, *, now: datetime, using_db: BaseDBAsyncClient
    ) -> list[Alert]:
        """Rules that read questionnaire responses, in the transaction that stored `response`."""
        return []

    async def publish(self, alerts: Sequence[Alert]) -> None:
        """After commit: tell subscribers (every replica's) that these alerts were raised."""
        for alert in alerts:
            await self.broker.publish(AlertNotice(alert.id, alert.clinic_id))

    async def crisis_message(self, clinic_id: UUID) -> str:
        return self.policy.crisis_message
