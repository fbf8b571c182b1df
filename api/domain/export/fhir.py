"""Stored records as FHIR R4 resources (plain JSON dicts). Pure functions: no queries, no access checks.

Choices a recipient should know (research/domain.md §5):
- One Observation per measure of a diary entry. Pain now / worst 24 h / average 24 h all carry LOINC 72514-3 plus a
  local code from `DIARY_SYSTEM` saying which rating it is: LOINC alone does not distinguish them.
- A deleted diary entry or questionnaire response is exported with status `entered-in-error`, not left out: a
  recipient that imported it earlier learns that it was withdrawn. An edited entry is `amended`.
- Resource ids are stable across exports: an Observation's id is derived from its entry's id and the measure.
- A side effect reported at severity 0 means "not present": no Observation. One would read as a finding of the
  symptom to a recipient that looks at the code and not at the severity component.
- A completed session is a Procedure; with a recorded dose (clinical exports only) also a MedicationAdministration
  of ketamine `partOf` it. A scheduled or cancelled session is an Appointment (booked / cancelled).
- Dose and clinician notes are clinic-side data: the patient's own export leaves them out, as the API does.
- A score converted by a published table (a PROMIS T-score) is two Observations, both derived from the response: the
  raw sum under the instrument's `loinc_total` (its total score) and the converted score under `loinc_converted`.
  Exported as one "total score" it would pass a T-score off as the sum of the answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4, uuid5

from api.domain.alert.models import Alert, AlertStatus
from api.domain.alert.rules import RULES
from api.domain.diary.models import DiaryEntry
from api.domain.errors import BadInput
from api.domain.export import codes
from api.domain.patient.models import Patient, PatientStatus
from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.questionnaire.instruments import get_instrument
from api.domain.questionnaire.models import QuestionnaireResponse
from api.domain.treatment.models import InfusionSession, SessionStatus

Resource = dict[str, Any]

ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
INTRAVENOUS = {"system": codes.SNOMED, "code": "47625008", "display": "Intravenous route"}
SURVEY = {"coding": [{"system": codes.OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}
_SCORE_UNIT = {"unit": "{score}", "system": codes.UCUM, "code": "{score}"}
_LIVE = (PatientStatus.INVITED, PatientStatus.ACTIVE, PatientStatus.PAUSED)

# (field, local code, display, LOINC code or None)
_SCORES = (
    ("pain_now", "pain-now", "Pain now (0-10 NRS)", codes.PAIN_SEVERITY),
    ("pain_worst", "pain-worst-24h", "Worst pain in the last 24 hours (0-10 NRS)", codes.PAIN_SEVERITY),
    ("pain_average", "pain-average-24h", "Average pain in the last 24 hours (0-10 NRS)", codes.PAIN_SEVERITY),
    ("sleep_quality", "sleep-quality", "Sleep quality (0-10, 10 = best)", None),
    ("mood", "mood", "Mood (0-10, 10 = best)", None),
)
_LOINC_DISPLAY = {
    codes.PAIN_SEVERITY: "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
    codes.SLEEP_DURATION: "Sleep duration",
}


def reference(resource_type: str, resource_id: UUID | str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def patient_resource(patient: Patient) -> Resource:
    # The display name only: the account's email is a login credential, not part of the clinical record.
    return {
        "resourceType": "Patient",
        "id": str(patient.id),
        "active": patient.status in _LIVE,
        "name": [{"text": patient.display_name}],
    }


def diary_observations(entry: DiaryEntry) -> list[Resource]:
    status = _status(entry.deleted_at, amended=entry.version > 1)
    made = _ObservationMaker(entry, status)
    out: list[Resource] = []
    for name, local, display, loinc in _SCORES:
        value = getattr(entry, name)
        if value is not None:
            out.append(made(local, _concept(local, display, loinc), {"valueQuantity": {"value": value, **_SCORE_UNIT}}))
    if entry.sleep_hours is not None:
        hours = {"value": _number(entry.sleep_hours), "unit": "h", "system": codes.UCUM, "code": "h"}
        concept = _concept("sleep-hours", "Hours slept", codes.SLEEP_DURATION)
        out.append(made("sleep-hours", concept, {"valueQuantity": hours}))
    if entry.pain_locations:
        regions = [_region_component(r) for r in entry.pain_locations]
        out.append(made("pain-locations", _concept("pain-locations", "Where it hurts", None), {"component": regions}))
    out.extend(
        made(f"side-effect-{e['code']}", _side_effect_concept(e["code"]), _severity(e))
        for e in entry.side_effects
        if e["severity"] > 0
    )
    if entry.rescue_medication is not None:
        concept = _concept("rescue-medication", "Took rescue medication", None)
        out.append(made("rescue-medication", concept, {"valueBoolean": entry.rescue_medication}))
    if entry.note:
        out.append(made("note", _concept("note", "Diary note", None), {"valueString": entry.note}))
    return out


def questionnaire_resources(response: QuestionnaireResponse) -> list[Resource]:
    """The response and, when it has a score, the score Observations derived from it."""
    known = codes.instrument_codes(response.instrument, response.instrument_version)
    status = _status(response.deleted_at, amended=False)
    authored = _local(response.authored_at, response.utc_offset_minutes)
    answered: Resource = {
        "resourceType": "QuestionnaireResponse",
        "id": str(response.id),
        "questionnaire": f"{codes.QUESTIONNAIRE_BASE}/{response.instrument}|{response.instrument_version}",
        "status": "entered-in-error" if response.deleted_at is not None else "completed",
        "subject": reference("Patient", response.patient_id),
        "authored": authored,
        "source": reference("Patient", response.patient_id),
        "item": [_answer_item(known, item, value) for item, value in sorted(response.answers.items(), key=_natural)],
    }
    if response.score is None:
        return [answered]

    def observed(kind: str, coding: dict[str, Any], value: int | float) -> Resource:
        return {
            "resourceType": "Observation",
            "id": str(uuid5(response.id, kind)),
            "status": status,
            "category": [SURVEY],
            "code": {"coding": [coding], "text": coding["display"]},
            "subject": reference("Patient", response.patient_id),
            "effectiveDateTime": authored,
            "issued": _instant(response.created_at),
            "valueQuantity": {"value": value, **_SCORE_UNIT},
            "derivedFrom": [reference("QuestionnaireResponse", response.id)],
        }

    # Scoring keeps the raw sum only when a table converted it; read from the response, so this holds for a
    # definition no longer installed too.
    raw = response.derived.get("raw_score")
    if raw is None:
        score = observed("score", known.coding_of_total(response.instrument), response.score)
        score["code"]["text"] = f"{known.title} score"
        out = [answered, score]
    else:
        # The published conversion as the table gives it (60.25), not the whole number the score column keeps.
        exact = response.derived.get("score_exact", response.score)
        score = observed("converted", known.coding_of_converted(response.instrument), exact)
        out = [answered, observed("score", known.coding_of_raw(response.instrument), raw), score]
    if response.band:
        # Bands read the converted score, never the raw sum.
        score["interpretation"] = [{"text": response.band}]
    return out


def session_resources(session: InfusionSession, *, clinical: bool) -> list[Resource]:
    if session.status is not SessionStatus.COMPLETED:
        return [_appointment(session)]
    start = session.started_at or session.starts_at
    end = session.ended_at or start + timedelta(minutes=session.planned_duration_minutes)
    period = {"start": _instant(start), "end": _instant(end)}
    procedure: Resource = {
        "resourceType": "Procedure",
        "id": str(session.id),
        "status": "completed",
        "code": {"coding": [_session_coding()], "text": "Ketamine infusion"},
        "subject": reference("Patient", session.patient_id),
        "performedPeriod": period,
    }
    if clinical and session.notes:
        procedure["note"] = [{"text": session.notes}]
    if not clinical or session.dose_mg is None:
        return [procedure]
    dose = {"value": _number(session.dose_mg), "unit": "mg", "system": codes.UCUM, "code": "mg"}
    administration: Resource = {
        "resourceType": "MedicationAdministration",
        "id": str(uuid5(session.id, "ketamine")),
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": codes.RXNORM, "code": codes.KETAMINE_RXNORM, "display": "ketamine"}],
            "text": "Ketamine",
        },
        "subject": reference("Patient", session.patient_id),
        "effectivePeriod": period,
        "partOf": [reference("Procedure", session.id)],
        "dosage": {"route": {"coding": [INTRAVENOUS]}, "dose": dose},
    }
    return [procedure, administration]


# Prompt status -> R4 Task.status (http://hl7.org/fhir/task-status). The patient is the Task's performer: it is
# `requested` until they take it up, whatever the push did (a delivered notification is not the patient claiming it,
# which `received` would say), `in-progress` once they opened it, and `failed` when the window closed unanswered (the
# request was made and not fulfilled; `rejected` would say the patient declined, `cancelled` that the clinic withdrew
# it, which is what CANCELLED means). `businessStatus` keeps our own state, so nothing is lost in the mapping.
_TASK_STATUS = {
    PromptStatus.SCHEDULED: "requested",
    PromptStatus.SENT: "requested",
    PromptStatus.DELIVERED: "requested",
    PromptStatus.OPENED: "in-progress",
    PromptStatus.ANSWERED: "completed",
    PromptStatus.EXPIRED: "failed",
    PromptStatus.CANCELLED: "cancelled",
}
FLAG_CLINICAL = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "clinical", "display": "Clinical"}
    ]
}
ALERT_RULE_SYSTEM = f"{codes.LOCAL_BASE}/CodeSystem/alert-rule"


def prompt_task(prompt: Prompt, answers: Iterable[dict[str, str]]) -> Resource:
    """A check-in the patient was sent, as a Task they perform. `answers`: references to the resources that
    answered it (its QuestionnaireResponse, or its diary entry's Observations), listed as the Task's `output` once it
    is answered. The description is the instrument's title: the kind of check-in, nothing the patient wrote.

    The window the patient had (due to expiry) is `restriction.period`, R4's "over what time-period is fulfillment
    sought"; `executionPeriod` is what happened: sent, then answered, expired or cancelled."""
    task: Resource = {
        "resourceType": "Task",
        "id": str(prompt.id),
        "status": _TASK_STATUS[prompt.status],
        "businessStatus": {"text": prompt.status.value.lower()},
        "intent": "order",
        "description": _instrument_title(prompt.instrument),
        "for": reference("Patient", prompt.patient_id),
        "authoredOn": _instant(prompt.created_at),
        "lastModified": _instant(prompt.updated_at),
        "owner": reference("Patient", prompt.patient_id),
        "restriction": {"period": {"start": _instant(prompt.due_at), "end": _instant(prompt.expires_at)}},
    }
    if prompt.status is PromptStatus.EXPIRED:
        task["statusReason"] = {"text": "Not answered before the check-in closed"}
    execution = _period(prompt.sent_at, prompt.answered_at or prompt.expired_at or prompt.cancelled_at)
    if execution:
        task["executionPeriod"] = execution
    output = [{"type": {"text": "Answer"}, "valueReference": a} for a in answers]
    if output and prompt.status is PromptStatus.ANSWERED:
        task["output"] = output
    return task


def alert_flag(alert: Alert) -> Resource:
    """An alert raised on the patient's data, as a clinical Flag: active until the clinic resolved it. What the
    clinic's staff made of it is left out: who acknowledged or resolved it and their notes (staff-authored, in the
    alert's history), and the rule's details (thresholds and values the clinic's triage reads)."""
    rule = RULES.get(alert.rule_id)
    # A rule since retired still names itself by its id.
    title = alert.rule_id if rule is None else rule.summary[:1].upper() + rule.summary[1:]
    resolved = alert.status is AlertStatus.RESOLVED
    return {
        "resourceType": "Flag",
        "id": str(alert.id),
        "meta": {"lastUpdated": _instant(alert.updated_at)},
        "status": "inactive" if resolved else "active",
        "category": [FLAG_CLINICAL],
        "code": {"coding": [{"system": ALERT_RULE_SYSTEM, "code": alert.rule_id, "display": title}], "text": title},
        "subject": reference("Patient", alert.patient_id),
        "period": _period(alert.raised_at, alert.resolved_at if resolved else None),
    }


def _instrument_title(instrument: str) -> str:
    try:
        return get_instrument(instrument).title
    except BadInput:
        return instrument


def _period(start: datetime | None, end: datetime | None) -> Resource:
    period: Resource = {}
    if start is not None:
        period["start"] = _instant(start)
    if end is not None:
        period["end"] = _instant(end)
    return period


def searchset(resources: Iterable[Resource], *, base_url: str, self_url: str, now: datetime) -> Resource:
    """A `$everything` result (R4 says searchset); the Patient is the match, the rest are included with it."""
    entries = [_entry(r, base_url) for r in resources]
    return {
        "resourceType": "Bundle",
        "id": str(uuid4()),
        "meta": {"lastUpdated": _instant(now)},
        "type": "searchset",
        "timestamp": _instant(now),
        "total": len(entries),
        "link": [{"relation": "self", "url": self_url}],
        "entry": entries,
    }


def _entry(resource: Resource, base_url: str) -> Resource:
    mode = "match" if resource["resourceType"] == "Patient" else "include"
    return {
        # RESTful absolute URLs, so the relative references inside the resources resolve within the bundle.
        "fullUrl": f"{base_url}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


class _ObservationMaker:
    def __init__(self, entry: DiaryEntry, status: str) -> None:
        self.entry = entry
        self.status = status
        self.effective = _local(entry.recorded_at, entry.utc_offset_minutes)

    def __call__(self, kind: str, code: Resource, value: Resource) -> Resource:
        return {
            "resourceType": "Observation",
            "id": str(uuid5(self.entry.id, kind)),
            "meta": {"lastUpdated": _instant(self.entry.updated_at)},
            "status": self.status,
            "category": [SURVEY],
            "code": code,
            "subject": reference("Patient", self.entry.patient_id),
            "effectiveDateTime": self.effective,
            "issued": _instant(self.entry.created_at),
            **value,
        }


def _concept(local: str, display: str, loinc: str | None) -> Resource:
    coding = [{"system": codes.DIARY_SYSTEM, "code": local, "display": display}]
    if loinc is not None:
        coding.insert(0, {"system": codes.LOINC, "code": loinc, "display": _LOINC_DISPLAY[loinc]})
    return {"coding": coding, "text": display}


def _side_effect_concept(code: str) -> Resource:
    display = code.replace("_", " ").capitalize()
    coding = [{"system": codes.SIDE_EFFECT_SYSTEM, "code": code, "display": display}]
    if code in codes.SIDE_EFFECT_SNOMED:
        snomed, snomed_display = codes.SIDE_EFFECT_SNOMED[code]
        coding.insert(0, {"system": codes.SNOMED, "code": snomed, "display": snomed_display})
    return {"coding": coding, "text": display}


def _severity(effect: dict[str, Any]) -> Resource:
    severity = {
        "coding": [{"system": codes.DIARY_SYSTEM, "code": "severity", "display": "Severity (0 none - 3 severe)"}]
    }
    return {"component": [{"code": severity, "valueInteger": int(effect["severity"])}]}


def _region_component(region: str) -> Resource:
    return {
        "code": {"coding": [{"system": codes.DIARY_SYSTEM, "code": "pain-location", "display": "Pain location"}]},
        "valueCodeableConcept": {"coding": [{"system": codes.BODY_REGION_SYSTEM, "code": region}]},
    }


def _answer_item(known: codes.InstrumentCodes, item: str, value: int) -> Resource:
    out: Resource = {"linkId": item}
    if item in known.item_text:
        out["text"] = known.item_text[item]
    option = known.answers.get(item, {}).get(value)
    if option is None or option.loinc is None:
        out["answer"] = [{"valueInteger": value}]
        return out
    # The LOINC answer with its score kept alongside: the integer is what the score was computed from.
    coding = {
        "extension": [{"url": ORDINAL_VALUE, "valueDecimal": value}],
        "system": codes.LOINC,
        "code": option.loinc,
        "display": option.label,
    }
    out["answer"] = [{"valueCoding": coding}]
    return out


def _appointment(session: InfusionSession) -> Resource:
    end = session.starts_at + timedelta(minutes=session.planned_duration_minutes)
    return {
        "resourceType": "Appointment",
        "id": str(session.id),
        "status": "cancelled" if session.status is SessionStatus.CANCELLED else "booked",
        "serviceType": [{"coding": [_session_coding()], "text": "Ketamine infusion"}],
        "start": _instant(session.starts_at),
        "end": _instant(end),
        "minutesDuration": session.planned_duration_minutes,
        "participant": [{"actor": reference("Patient", session.patient_id), "status": "accepted"}],
    }


def _session_coding() -> dict[str, str]:
    return {"system": codes.SESSION_SYSTEM, "code": "ketamine-infusion", "display": "Ketamine infusion"}


def _status(deleted_at: datetime | None, *, amended: bool) -> str:
    if deleted_at is not None:
        return "entered-in-error"
    return "amended" if amended else "final"


def _local(instant: datetime, offset_minutes: int) -> str:
    """The instant as the patient lived it: with the UTC offset they recorded it at."""
    return instant.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat()


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _number(value: Decimal) -> int | float:
    # JSON numbers: 7.50 h is 7.5, 8.00 h is 8 (a Decimal of two places is exact as a float's shortest repr).
    return int(value) if value == value.to_integral_value() else float(value)


def _natural(pair: tuple[str, int]) -> tuple[str, int]:
    """`phq9_2` before `phq9_10`; items without a number after numbered ones of the same prefix."""
    match = re.fullmatch(r"(.*?)(\d+)", pair[0])
    return (match.group(1), int(match.group(2))) if match else (pair[0] + "\uffff", 0)


def iter_patient_resources(
    patient: Patient,
    entries: Iterable[DiaryEntry],
    responses: Iterable[QuestionnaireResponse],
    sessions: Iterable[InfusionSession],
    *,
    clinical: bool,
) -> Iterator[Resource]:
    yield patient_resource(patient)
    for entry in entries:
        yield from diary_observations(entry)
    for response in responses:
        yield from questionnaire_resources(response)
    for session in sessions:
        yield from session_resources(session, clinical=clinical)
