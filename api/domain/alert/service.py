"""Raising, listing, acknowledging, resolving and escalating alerts.

State machine: OPEN → ACKNOWLEDGED → RESOLVED, or OPEN → RESOLVED; a new trigger of a critical or high alert
takes it from ACKNOWLEDGED back to OPEN (see raising.py). Repeating an action (acknowledging an
acknowledged alert, resolving a resolved one) or acknowledging a resolved alert is a CONFLICT: two clinicians
acting on one alert at once learn that someone else already did, and no note is silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.domain import audit
from api.domain.actor import Actor
from api.domain.alert import settings as clinic_settings
from api.domain.alert import timed
from api.domain.alert.broker import AlertBroker, AlertNotice, NoticeKind
from api.domain.alert.evaluate import READ_FROM_ENTRY, entry_findings, response_findings
from api.domain.alert.models import Alert, AlertEvent, AlertStatus, Severity
from api.domain.alert.raising import Announcement, Finding, raise_alert
from api.domain.alert.settings import ClinicSettings, SettingsChange
from api.domain.alert.visibility import unreachable_patients
from api.domain.diary.models import DiaryEntry
from api.domain.errors import BadInput, Conflict, NotFound
from api.domain.paging import Page, after_filter, make_page, page_size, parse_instant
from api.domain.patient.access import reachable_patient, require_staff
from api.domain.patient.models import Patient
from api.domain.questionnaire.models import QuestionnaireResponse

log = logging.getLogger("interlude.alerts")

MAX_NOTE = 2000
LIFECYCLE = {
    action: rank
    for rank, action in enumerate(("raised", "retriggered", "acknowledged", "escalated", "reopened", "resolved"))
}
AUDIT_ACTION = {"acknowledged": "alert.acknowledge", "resolved": "alert.resolve"}


@dataclass(frozen=True)
class AlertPolicy:
    escalation_delay: timedelta
    crisis_message: str


@dataclass(frozen=True)
class AlertFilter:
    statuses: Sequence[AlertStatus] = ()
    severities: Sequence[Severity] = ()
    patient_id: UUID | None = None
    escalated: bool | None = None


class Announced(list[Alert]):
    """The alerts one record raised, reopened or retriggered, each with the notice it is owed. A plain list of
    alerts to the callers, who keep it through their transaction and hand it to `publish` after the commit."""

    def __init__(self, announcements: Sequence[Announcement] = ()) -> None:
        super().__init__(a.alert for a in announcements)
        self.kinds = {a.alert.id: a.kind for a in announcements}


class AlertService:
    def __init__(self, policy: AlertPolicy, broker: AlertBroker) -> None:
        self.policy = policy
        self.broker = broker

    async def on_entry(
        self,
        patient: Patient,
        entry: DiaryEntry,
        *,
        now: datetime,
        using_db: BaseDBAsyncClient,
        changed: Collection[str] | None = None,
    ) -> Announced:
        """Rules that read diary entries, in the transaction that stored `entry`. Publish after commit.

        `changed`: for an edit, the fields it changed. An edit of nothing a rule reads (mood, a note) runs no rule,
        so it cannot raise what the entry as first stored did not (a threshold lowered since, say)."""
        if changed is not None and not READ_FROM_ENTRY & set(changed):
            return Announced()
        rules = await clinic_settings.thresholds(patient.clinic_id, using_db)
        return await self._raise(patient, await entry_findings(entry, rules, using_db), rules.version, now, using_db)

    async def on_response(
        self, patient: Patient, response: QuestionnaireResponse, *, now: datetime, using_db: BaseDBAsyncClient
    ) -> Announced:
        """Rules that read questionnaire responses, in the transaction that stored `response`."""
        rules = await clinic_settings.thresholds(patient.clinic_id, using_db)
        return await self._raise(patient, response_findings(response, rules), rules.version, now, using_db)

    async def publish(self, alerts: Sequence[Alert], kind: NoticeKind = NoticeKind.RAISED) -> None:
        """After commit: tell subscribers (every replica's) that these alerts were raised or escalated; alerts
        from on_entry/on_response carry their own kind (a reopened alert is raised again, a critical one that
        was open is RETRIGGERED)."""
        kinds = alerts.kinds if isinstance(alerts, Announced) else {}
        for alert in alerts:
            try:
                await self.broker.publish(AlertNotice(alert.id, alert.clinic_id, kinds.get(alert.id, kind)))
            except Exception as exc:
                # The alert is committed and listed; a lost notice must not fail the patient's write that raised it.
                log.error("alert.publish_failed", extra={"alert_id": str(alert.id), "error": type(exc).__name__})

    async def crisis_message(self, clinic_id: UUID) -> str:
        return await clinic_settings.crisis_message(clinic_id, self.policy.crisis_message)

    async def search(
        self, actor: Actor, where: AlertFilter, *, first: int | None, after: str | None, now: datetime
    ) -> Page[Alert]:
        """The clinic's alerts, newest first. Staff only; each patient in the page is audited as read."""
        require_staff(actor)
        size = page_size(first)
        page_after = after_filter("raised_at", after, parse_instant, descending=True)
        query = Alert.filter(clinic_id=actor.clinic_id).exclude(patient_id__in=unreachable_patients(actor.clinic_id))
        if where.patient_id is not None:
            query = query.filter(patient_id=(await self._patient(actor, where.patient_id)).id)
        if where.statuses:
            query = query.filter(status__in=list(where.statuses))
        if where.severities:
            query = query.filter(severity__in=list(where.severities))
        if where.escalated is not None:
            query = query.filter(escalated_at__isnull=not where.escalated)
        # The patient comes with the page: a list showing each alert's patient costs no query per row.
        rows = await query.filter(page_after).order_by("-raised_at", "-id").limit(size + 1).select_related("patient")
        page = make_page(rows, size, lambda a: (a.raised_at, a.id))
        if page.items:
            patients = list(dict.fromkeys(a.patient_id for a in page.items))
            await audit.record(actor, "alert.read", patients, now=now)
        return page

    async def of_patient(
        self, actor: Actor, patient_id: UUID, where: AlertFilter, *, first: int | None, after: str | None, now: datetime
    ) -> Page[Alert]:
        return await self.search(actor, replace(where, patient_id=patient_id), first=first, after=after, now=now)

    async def history(self, actor: Actor, alert: Alert) -> list[AlertEvent]:
        """An alert already read through `search` or an action: the caller has passed the access check."""
        require_staff(actor)
        if alert.clinic_id != actor.clinic_id:
            raise NotFound("alert", field="id")
        events = await AlertEvent.filter(alert_id=alert.id)
        # Steps taken at one instant (a job's clock, a test's) still read in lifecycle order.
        return sorted(events, key=lambda e: (e.at, LIFECYCLE.get(e.action, len(LIFECYCLE))))

    async def acknowledge(self, actor: Actor, alert_id: UUID, note: str | None, *, now: datetime) -> Alert:
        async with in_transaction() as conn:
            alert = await self._acted_on(actor, alert_id, note, conn)
            if alert.status is not AlertStatus.OPEN:
                raise Conflict(f"alert is already {alert.status.value.lower()}", field="id")
            alert.status, alert.acknowledged_at, alert.acknowledged_by_id = (
                AlertStatus.ACKNOWLEDGED,
                now,
                actor.account_id,
            )
            await self._record(actor, alert, "acknowledged", note=note, now=now, conn=conn)
        return alert

    async def resolve(self, actor: Actor, alert_id: UUID, note: str | None, *, now: datetime) -> Alert:
        async with in_transaction() as conn:
            alert = await self._acted_on(actor, alert_id, note, conn)
            if alert.status is AlertStatus.RESOLVED:
                raise Conflict("alert is already resolved", field="id")
            alert.status, alert.resolved_at, alert.resolved_by_id = AlertStatus.RESOLVED, now, actor.account_id
            # Frees the episode: the next trigger raises a new alert.
            alert.open_key = None
            await self._record(actor, alert, "resolved", note=note, now=now, conn=conn)
        return alert

    async def settings(self, actor: Actor) -> ClinicSettings:
        return await clinic_settings.read(actor, delay=self.policy.escalation_delay, message=self.policy.crisis_message)

    async def update_settings(self, actor: Actor, change: SettingsChange, *, now: datetime) -> ClinicSettings:
        return await clinic_settings.update(
            actor, change, delay=self.policy.escalation_delay, message=self.policy.crisis_message, now=now
        )

    async def run_time_rules(self, actor: Actor, *, now: datetime) -> timed.MissedDiaryReport:
        """One clinic's time-based rules, as its system actor; raised alerts are published after their commit."""
        report = await timed.missed_diary(actor, now=now)
        await self.publish(report.raised)
        return report

    async def escalate(self, *, now: datetime) -> list[Alert]:
        """Every clinic's overdue critical alerts, escalated once each and announced to subscribers."""
        escalated = await timed.escalate_due(self.policy.escalation_delay, now=now)
        for alert in escalated:
            log.warning("alert.escalated", extra={"alert_id": str(alert.id), "clinic_id": str(alert.clinic_id)})
        await self.publish(escalated, NoticeKind.ESCALATED)
        return escalated

    async def _raise(
        self, patient: Patient, findings: list[Finding], version: int, now: datetime, conn: BaseDBAsyncClient
    ) -> Announced:
        announced = []
        for finding in findings:
            done = await raise_alert(
                patient.clinic_id, patient.id, finding, settings_version=version, now=now, conn=conn
            )
            if done is not None:
                announced.append(done)
        return Announced(announced)

    async def _patient(self, actor: Actor, patient_id: UUID) -> Patient:
        try:
            return await reachable_patient(actor, patient_id)
        except NotFound as exc:
            raise NotFound("patient", field="patient_id") from exc

    async def _acted_on(self, actor: Actor, alert_id: UUID, note: str | None, conn: BaseDBAsyncClient) -> Alert:
        require_staff(actor)
        if note is not None and len(note) > MAX_NOTE:
            raise BadInput("note", f"at most {MAX_NOTE} characters")
        alert = await Alert.filter(id=alert_id, clinic_id=actor.clinic_id).select_for_update().using_db(conn).first()
        if alert is None:
            raise NotFound("alert", field="id")
        try:
            await reachable_patient(actor, alert.patient_id)
        except NotFound as exc:
            raise NotFound("alert", field="id") from exc
        return alert

    async def _record(
        self, actor: Actor, alert: Alert, action: str, *, note: str | None, now: datetime, conn: BaseDBAsyncClient
    ) -> None:
        alert.updated_at = now
        await alert.save(using_db=conn)
        await AlertEvent.create(
            alert_id=alert.id, action=action, actor_id=actor.account_id, note=note, at=now, using_db=conn
        )
        await audit.record(
            actor, AUDIT_ACTION[action], [alert.patient_id], now=now, object_id=alert.id, write=True, using_db=conn
        )
