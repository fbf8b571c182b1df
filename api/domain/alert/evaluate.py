"""What the data-driven rules find in a record that just arrived, with the context they need to read.

Episodes: rules about one record stand for the patient ("patient": one open alert until someone resolves it);
rules about the time after an infusion stand for that session ("session:<id>"; the pain trend is raised at most
once: see Rule.once_per_episode).

Each finding's trigger carries what the rule saw (Trigger.seen), so an edit that reports something worse is news.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from api.domain.alert.raising import Finding, Trigger
from api.domain.alert.rules import (
    PSYCHOTOMIMETIC,
    RED_FLAGS,
    Setting,
    Thresholds,
    answer_at_least,
    rebound,
    score_at_least,
    severities,
)
from api.domain.alert.rules import side_effects_at as reported
from api.domain.diary.models import DiaryEntry
from api.domain.diary.vocabulary import SideEffect
from api.domain.errors import BadInput
from api.domain.outcome.daily import daily_series, readings, values_by_date
from api.domain.questionnaire.instruments import PHQ9, PHQ9_ITEM9, SELF_HARM, get_instrument
from api.domain.questionnaire.models import QuestionnaireResponse
from api.domain.sql import Where, select
from api.domain.treatment.models import InfusionSession, SessionStatus

PATIENT = "patient"
VOMITING = frozenset({SideEffect.VOMITING})
# The entry fields a rule reads: an edit of anything else (mood, a note) has nothing new to show them.
READ_FROM_ENTRY = frozenset({"side_effects", "pain_average", "recorded_at"})

Check = Callable[[Setting], dict[str, Any] | None]


def session_end(session: InfusionSession) -> datetime:
    return session.ended_at or session.starts_at + timedelta(minutes=session.planned_duration_minutes)


async def entry_findings(entry: DiaryEntry, rules: Thresholds, conn: BaseDBAsyncClient) -> list[Finding]:
    if entry.deleted_at is not None:
        return []
    trigger = Trigger("DiaryEntry", entry.id)
    findings = []
    for rule_id, codes in (("red_flag_symptom", RED_FLAGS), ("severe_vomiting", VOMITING)):
        setting = rules.of(rule_id)
        seen = reported(entry.side_effects, codes, setting["min_severity"])
        if setting.enabled and seen:
            details = {"symptoms": seen, "min_severity": setting["min_severity"]}
            symptoms = Trigger(trigger.type, entry.id, severities(entry.side_effects, seen))
            findings.append(Finding(setting.rule, PATIENT, symptoms, details))
    latest = await _latest_session(entry, conn)
    if latest is not None and latest.starts_at <= entry.recorded_at:
        findings += _dissociation(entry, latest, rules, trigger)
        findings += await _loss_of_response(entry, latest, rules, trigger, conn)
    elif latest is not None and (session := await _latest_session(entry, conn, before=entry.recorded_at)):
        # An entry synced late, from before the latest infusion: it reports after an earlier one. Pain is judged
        # after the latest infusion only, which this entry is not part of.
        findings += _dissociation(entry, session, rules, trigger)
    return findings


def response_findings(response: QuestionnaireResponse, rules: Thresholds) -> list[Finding]:
    if response.deleted_at is not None:
        return []
    item9: Check = lambda s: _self_harm(response, s["min_answer"])  # noqa: E731
    score: Check = lambda s: score_at_least(response.score, s["min_score"])  # noqa: E731
    by_instrument: dict[str, dict[str, Check]] = {
        "phq9": {"phq9_severe": score},
        "gad7": {"gad7_severe": score},
    }
    # Any instrument may carry the self-harm flag (a translated or licensed PHQ-9 under its own id): where the
    # patient is shown the crisis message, a clinician is alerted too.
    checks = {"phq9_item9": item9, **by_instrument.get(response.instrument, {})}
    findings = []
    for rule_id, check in checks.items():
        setting = rules.of(rule_id)
        if setting.enabled and (details := check(setting)) is not None:
            # What was seen is the answer or the score, so an edit that makes it worse is news.
            seen = {k: details[k] for k in ("answer", "score") if isinstance(details.get(k), int)}
            trigger = Trigger("QuestionnaireResponse", response.id, seen)
            findings.append(Finding(setting.rule, PATIENT, trigger, {"instrument": response.instrument, **details}))
    return findings


def _self_harm(response: QuestionnaireResponse, min_answer: int) -> dict[str, Any] | None:
    if response.instrument == PHQ9 and (details := answer_at_least(response.answers, PHQ9_ITEM9, min_answer)):
        return details
    if response.derived.get(SELF_HARM) is not True:
        return None
    item = _self_harm_item(response)
    return {"item": item, "answer": response.answers.get(item) if item else None, "flag": SELF_HARM}


def _self_harm_item(response: QuestionnaireResponse) -> str | None:
    """The item whose answer raised the flag, as the response's own definition declares it."""
    try:
        instrument = get_instrument(response.instrument, response.instrument_version)
    except BadInput:
        # A definition since removed: the flag stored with the response still stands.
        return None
    return next((f.item for f in instrument.flags if f.flag == SELF_HARM), None)


async def _latest_session(
    entry: DiaryEntry, conn: BaseDBAsyncClient, *, before: datetime | None = None
) -> InfusionSession | None:
    """The patient's latest completed session, or the latest that started by `before` (the infusion an entry
    recorded then reports after)."""
    # Written out (api/domain/sql.py): every diary entry runs it.
    completed = Where('"patient_id" = {} AND "status" = {}', entry.patient_id, SessionStatus.COMPLETED.value)
    if before is not None:
        completed.add('"starts_at" <= {}', before.astimezone(UTC))
    found = await select(InfusionSession, completed, order_by='"starts_at" DESC', limit=1, using_db=conn)
    return found[0] if found else None


def _dissociation(entry: DiaryEntry, session: InfusionSession, rules: Thresholds, trigger: Trigger) -> list[Finding]:
    setting = rules.of("persistent_dissociation")
    seen = reported(entry.side_effects, PSYCHOTOMIMETIC, setting["min_severity"])
    after = entry.recorded_at - session_end(session)
    if not (setting.enabled and seen and after >= timedelta(hours=setting["hours"])):
        return []
    details = {
        "symptoms": seen,
        "hours_after_session": round(after.total_seconds() / 3600, 1),
        "hours": setting["hours"],
        "min_severity": setting["min_severity"],
    }
    symptoms = Trigger(trigger.type, entry.id, severities(entry.side_effects, seen))
    return [Finding(setting.rule, f"session:{session.id}", symptoms, details)]


async def _loss_of_response(
    entry: DiaryEntry, session: InfusionSession, rules: Thresholds, trigger: Trigger, conn: BaseDBAsyncClient
) -> list[Finding]:
    setting = rules.of("loss_of_response")
    ended = session_end(session)
    if not setting.enabled or entry.pain_average is None or entry.recorded_at < ended:
        return []
    since = DiaryEntry.filter(patient_id=entry.patient_id, deleted_at=None, recorded_at__gte=ended).using_db(conn)
    by_date = values_by_date(daily_series(await readings(since), ["pain_average"]), "pain_average")
    details = rebound(by_date, setting)
    if details is None:
        return []
    return [Finding(setting.rule, f"session:{session.id}", trigger, {**details, "session_ended_at": ended.isoformat()})]
