"""Raising an alert: one open alert per (patient, rule, episode), however many records or replicas trigger it.

What a finding does, in order:
- a record already among the triggers of any alert of the rule for the patient, whatever its status, does
  nothing unless it now reports something no earlier judgement of it covered (a symptom not reported before, a
  higher severity, answer or score: Trigger.seen): an edited entry or a job's next pass is not news, and a
  resolved alert stays resolved; a worse edit is news, and is handled below as any new record;
- a rule that raises once per episode (Rule.once_per_episode) does nothing once an alert of that episode was
  resolved;
- no alert open for the episode: a new alert (announced as RAISED);
- an ACKNOWLEDGED critical or high alert: reopened, since whoever acknowledged it has not seen the new report. It
  is OPEN again, its acknowledgement and escalation are cleared (history keeps them as events), and `raised_at`
  moves to now, so the escalation clock and the list order start again from the new trigger; the first raise
  stays in details.first_raised_at (announced as RAISED);
- otherwise the trigger is appended: announced as RETRIGGERED when the alert is critical, so whoever is watching
  sees the new report, and quietly for the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from api.domain.alert.broker import NoticeKind
from api.domain.alert.models import Alert, AlertEvent, AlertStatus, Severity
from api.domain.alert.rules import Rule, Source

REOPENS = frozenset({Severity.CRITICAL, Severity.HIGH})


@dataclass(frozen=True)
class Trigger:
    """A record that made a rule fire: DiaryEntry, QuestionnaireResponse or TreatmentCourse.

    `seen` is what the rule saw in it, each a level where higher is worse (a symptom code with its severity, the
    answer, the score), kept with the trigger so that an edit of the record can be told from a worse report.
    """

    type: str
    id: UUID
    seen: Mapping[str, int] = field(default_factory=dict, compare=False, hash=False)

    def as_json(self, at: datetime) -> dict[str, Any]:
        stored: dict[str, Any] = {"type": self.type, "id": str(self.id), "at": at.isoformat()}
        # The clock's triggers and the pain trend see no levels: a record without "seen" counts as fully judged.
        return {**stored, "seen": dict(self.seen)} if self.seen else stored

    def covered_by(self, triggers: list[dict[str, Any]]) -> bool:
        """Whether earlier judgements of this record saw everything it reports now, at least as bad."""
        earlier = [t for t in triggers if self._is(t)]
        if not earlier:
            return False
        # No "seen": a trigger of a rule that reads no levels, or stored before they were kept; either way what it
        # judged is not known to be less than what is reported now.
        if any("seen" not in t for t in earlier):
            return True
        return all(any(t["seen"].get(name, level - 1) >= level for t in earlier) for name, level in self.seen.items())

    def _is(self, trigger: dict[str, Any]) -> bool:
        return trigger.get("type") == self.type and trigger.get("id") == str(self.id)


@dataclass(frozen=True)
class Finding:
    rule: Rule
    episode: str
    trigger: Trigger
    details: dict[str, Any]


@dataclass(frozen=True)
class Announcement:
    """An alert a finding raised, reopened or retriggered, and the notice subscribers are owed after commit."""

    alert: Alert
    kind: NoticeKind


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
) -> Announcement | None:
    """What subscribers must hear about, or None when the finding changed nothing they need to know.

    Runs inside the caller's transaction. The insert comes first, in a savepoint: the unique open key decides,
    so two transactions raising the same episode at once leave one alert, the later one appending its trigger.
    """
    key = open_key(patient_id, finding.rule.id, finding.episode)
    details = {**finding.details, "settings_version": settings_version}
    # Twice at most: the open alert we collided with may be resolved before we read it, freeing the key. The
    # judgement is read again before the second insert: that resolve may be what now covers this finding (once per
    # session), and the first read, made without a lock, predates it.
    for _ in range(2):
        if await _already_judged(patient_id, finding, conn):
            return None
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
                    details=details,
                    raised_at=now,
                    updated_at=now,
                    using_db=conn,
                )
                await AlertEvent.create(alert_id=alert.id, action="raised", at=now, using_db=conn)
            return Announcement(alert, NoticeKind.RAISED)
        except IntegrityError:
            current = await Alert.filter(open_key=key).select_for_update().using_db(conn).first()
            if current is not None:
                return await _retrigger(current, finding.trigger, details, now, conn)
    return None


async def _already_judged(patient_id: UUID, finding: Finding, conn: BaseDBAsyncClient) -> bool:
    # The clock's rules name the episode itself (the course) as their trigger: a nudge may come again.
    by_record = finding.rule.source is not Source.CLOCK
    if not (by_record or finding.rule.once_per_episode):
        return False
    # Triggers are JSON, so the match is made here, over the patient's alerts of this one rule: a handful, since
    # each needs a clinician's resolve before the next can be raised.
    rows = (
        await Alert.filter(patient_id=patient_id, rule_id=finding.rule.id)
        .using_db(conn)
        .values("episode", "status", "triggers")
    )
    if by_record and finding.trigger.covered_by([t for r in rows for t in r["triggers"]]):
        return True
    return finding.rule.once_per_episode and any(
        r["episode"] == finding.episode and r["status"] == AlertStatus.RESOLVED for r in rows
    )


async def _retrigger(
    alert: Alert, trigger: Trigger, details: dict[str, Any], now: datetime, conn: BaseDBAsyncClient
) -> Announcement | None:
    # The same record seen again by a concurrent transaction adds nothing, unless it now reports something worse.
    if trigger.covered_by(alert.triggers):
        return None
    alert.triggers = [*alert.triggers, trigger.as_json(now)]
    alert.updated_at = now
    if alert.status is AlertStatus.ACKNOWLEDGED and alert.severity in REOPENS:
        return await _reopen(alert, details, now, conn)
    await alert.save(using_db=conn, update_fields=["triggers", "updated_at"])
    await AlertEvent.create(alert_id=alert.id, action="retriggered", at=now, using_db=conn)
    return Announcement(alert, NoticeKind.RETRIGGERED) if alert.severity is Severity.CRITICAL else None


async def _reopen(alert: Alert, details: dict[str, Any], now: datetime, conn: BaseDBAsyncClient) -> Announcement:
    first = alert.details.get("first_raised_at", alert.raised_at.isoformat())
    # The details describe the report that reopened it (item 9 now "nearly every day", not the earlier answer).
    alert.details = {**details, "first_raised_at": first}
    alert.status, alert.acknowledged_at, alert.acknowledged_by_id = AlertStatus.OPEN, None, None
    alert.escalated_at, alert.raised_at = None, now
    await alert.save(using_db=conn)
    await AlertEvent.create(alert_id=alert.id, action="reopened", at=now, using_db=conn)
    return Announcement(alert, NoticeKind.RAISED)
