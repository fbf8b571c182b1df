"""Rules the clock runs: missed diaries during an active course, and escalation of unacknowledged critical alerts.

Both are safe to run twice or on several replicas at once: raising is idempotent by the open key, and escalation
claims its rows with FOR UPDATE SKIP LOCKED and marks them before it commits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.functions import Max
from tortoise.transactions import in_transaction

from api.domain.account.models import Account
from api.domain.actor import Actor, Role
from api.domain.alert.models import Alert, AlertEvent, AlertStatus, ClinicAlertSettings, Severity
from api.domain.alert.raising import Finding, Trigger, open_key, raise_alert
from api.domain.alert.rules import Thresholds
from api.domain.alert.settings import thresholds
from api.domain.alert.visibility import unreachable_patients
from api.domain.diary.models import DiaryEntry
from api.domain.errors import Forbidden
from api.domain.patient.models import PatientStatus
from api.domain.treatment.models import CourseStatus, TreatmentCourse

log = logging.getLogger("interlude.alerts")

BATCH = 500
MISSED_DIARY = "missed_diary"


@dataclass
class MissedDiaryReport:
    raised: list[Alert]
    resolved: int = 0


async def missed_diary(actor: Actor, *, now: datetime) -> MissedDiaryReport:
    """One clinic: raise for every active course whose patient has logged nothing for the rule's days, and resolve
    the alerts of patients who have logged again or whose course ended (a nudge that no longer applies)."""
    if actor.role is not Role.SYSTEM:
        raise Forbidden("the clock runs time-based rules")
    rules = await thresholds(actor.clinic_id)
    report = MissedDiaryReport(raised=[])
    if not rules.of(MISSED_DIARY).enabled:
        # The clinic no longer wants these nudges: the open ones go too, or they would stay open for good.
        report.resolved = await _resolve_lapsed(actor.clinic_id, set(), now, note="rule disabled by the clinic")
        return report
    cutoff = now - timedelta(days=rules.of(MISSED_DIARY)["days"])
    lapsed: set[str] = set()
    # Keyset over course ids: each batch is one query for courses and one for their patients' last entries.
    last_id: UUID | None = None
    while courses := await _courses(actor.clinic_id, cutoff, last_id):
        last_id = courses[-1].id
        lapsed |= await _nudge(actor.clinic_id, courses, rules, cutoff=cutoff, now=now, report=report)
    report.resolved = await _resolve_lapsed(actor.clinic_id, lapsed, now)
    return report


async def _nudge(
    clinic_id: UUID,
    courses: list[TreatmentCourse],
    rules: Thresholds,
    *,
    cutoff: datetime,
    now: datetime,
    report: MissedDiaryReport,
) -> set[str]:
    """Raises for the courses without an entry since `cutoff`; returns their episodes."""
    setting = rules.of(MISSED_DIARY)
    latest = await _latest_entries([c.patient_id for c in courses])
    quiet = [c for c in courses if (last := latest.get(c.patient_id)) is None or last < cutoff]
    # A nudge already open stays as it is: no insert that the open key would only refuse, every hour.
    nudged = await _open_keys([open_key(c.patient_id, MISSED_DIARY, f"course:{c.id}") for c in quiet])
    for course in quiet:
        episode = f"course:{course.id}"
        if open_key(course.patient_id, MISSED_DIARY, episode) in nudged:
            continue
        last = latest.get(course.patient_id)
        details = {"days": setting["days"], "last_entry_at": last.isoformat() if last else None}
        finding = Finding(setting.rule, episode, Trigger("TreatmentCourse", course.id), details)
        async with in_transaction() as conn:
            raised = await raise_alert(
                clinic_id, course.patient_id, finding, settings_version=rules.version, now=now, conn=conn
            )
        if raised is not None:
            report.raised.append(raised.alert)
    return {f"course:{c.id}" for c in quiet}


async def _courses(clinic_id: UUID, cutoff: datetime, after: UUID | None) -> list[TreatmentCourse]:
    # Only a course (and an account) older than the window can have missed a whole window.
    query = TreatmentCourse.filter(
        clinic_id=clinic_id,
        status=CourseStatus.ACTIVE,
        created_at__lte=cutoff,
        patient__status=PatientStatus.ACTIVE,
        patient__activated_at__lte=cutoff,
    )
    if after is not None:
        query = query.filter(id__gt=after)
    return await query.order_by("id").limit(BATCH)


async def _open_keys(keys: list[str]) -> set[str]:
    rows = await Alert.filter(open_key__in=keys).values("open_key") if keys else []
    return {str(r["open_key"]) for r in rows}


async def _latest_entries(patient_ids: list[UUID]) -> dict[UUID, datetime]:
    rows = (
        await DiaryEntry.filter(patient_id__in=patient_ids, deleted_at=None)
        .group_by("patient_id")
        .annotate(latest=Max("recorded_at"))
        .values("patient_id", "latest")
    )
    return {r["patient_id"]: r["latest"] for r in rows}


async def _resolve_lapsed(clinic_id: UUID, lapsed: set[str], now: datetime, *, note: str = "diary resumed") -> int:
    resolved = 0
    async with in_transaction() as conn:
        still_open = Alert.filter(clinic_id=clinic_id, rule_id=MISSED_DIARY, open_key__isnull=False)
        for alert in await still_open.select_for_update().using_db(conn):
            if alert.episode in lapsed:
                continue
            alert.status, alert.open_key, alert.resolved_at, alert.updated_at = AlertStatus.RESOLVED, None, now, now
            await alert.save(using_db=conn, update_fields=["status", "open_key", "resolved_at", "updated_at"])
            await AlertEvent.create(alert_id=alert.id, action="resolved", note=note, at=now, using_db=conn)
            resolved += 1
    return resolved


async def escalate_due(default_delay: timedelta, *, now: datetime) -> list[Alert]:
    """Open critical alerts nobody acknowledged within their clinic's delay (counted from the raise, or from the
    reopening), marked escalated (once each) to the clinic's active admins: their account ids are kept in
    details.escalated_to and in the event's note."""
    due = Q(status=AlertStatus.OPEN, severity=Severity.CRITICAL, escalated_at=None) & await _past_delay(
        default_delay, now
    )
    # A held record's alerts escalate (they are listed until resolved); a purged one's are nowhere to be found.
    due &= ~Q(patient_id__in=unreachable_patients())
    escalated: list[Alert] = []
    while True:
        async with in_transaction() as conn:
            batch = await (
                Alert.filter(due)
                .order_by("raised_at", "id")
                .limit(BATCH)
                .select_for_update(skip_locked=True)
                .using_db(conn)
            )
            admins = await _admins({a.clinic_id for a in batch}, conn) if batch else {}
            for alert in batch:
                to = admins.get(alert.clinic_id, [])
                if not to:
                    # Still escalated: the mark and the notice are the record that nobody answered in time.
                    log.warning(
                        "alert.escalation_no_admin",
                        extra={"alert_id": str(alert.id), "clinic_id": str(alert.clinic_id)},
                    )
                alert.escalated_at, alert.updated_at = now, now
                alert.details = {**alert.details, "escalated_to": to}
                await alert.save(using_db=conn, update_fields=["escalated_at", "updated_at", "details"])
                note = f"escalated to {', '.join(to)}" if to else "no admin account to escalate to"
                await AlertEvent.create(alert_id=alert.id, action="escalated", note=note, at=now, using_db=conn)
        escalated += batch
        if len(batch) < BATCH:
            return escalated


async def _admins(clinic_ids: set[UUID], conn: BaseDBAsyncClient) -> dict[UUID, list[str]]:
    """The active admin account ids of each clinic, sorted."""
    query = Account.filter(clinic_id__in=list(clinic_ids), role=Role.ADMIN, is_active=True).using_db(conn)
    rows = await query.values_list("clinic_id", "id")
    by_clinic: dict[UUID, list[str]] = {}
    for clinic_id, account_id in sorted(rows, key=lambda r: str(r[1])):
        by_clinic.setdefault(UUID(str(clinic_id)), []).append(str(account_id))
    return by_clinic


async def _past_delay(default_delay: timedelta, now: datetime) -> Q:
    """Raised before `now` minus the clinic's own delay, or the default delay for clinics without one."""
    own = await ClinicAlertSettings.filter(escalation_minutes__isnull=False).values_list(
        "clinic_id", "escalation_minutes"
    )
    by_delay: dict[int, list[UUID]] = {}
    for clinic_id, minutes in own:
        by_delay.setdefault(minutes, []).append(clinic_id)
    default = Q(raised_at__lte=now - default_delay)
    if by_delay:
        default &= ~Q(clinic_id__in=[c for ids in by_delay.values() for c in ids])
    clauses = [Q(clinic_id__in=ids, raised_at__lte=now - timedelta(minutes=m)) for m, ids in by_delay.items()]
    return Q(default, *clauses, join_type="OR")


async def clinics_to_check() -> list[UUID]:
    """Clinics with an active course to watch, or a missed-diary alert that may no longer apply."""
    watching = await TreatmentCourse.filter(status=CourseStatus.ACTIVE).distinct().values("clinic_id")
    nudged = await Alert.filter(rule_id=MISSED_DIARY, open_key__isnull=False).distinct().values("clinic_id")
    return sorted({UUID(str(row["clinic_id"])) for row in (*watching, *nudged)})
