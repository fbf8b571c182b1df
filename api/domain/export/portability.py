"""What a patient's own export (GDPR Art. 20) adds to the clinical record of `$everything`: what they told us about
themself, and what we asked of them and raised on their data. No access checks: the caller has made sure the actor is
this patient.

- The sign-in email as a `telecom`: theirs to take along. The clinic's exports leave it out (a login credential is
  not part of the clinical record).
- Their preferences as extensions: the time zone by HL7's `timezone` extension; diary time, quiet hours and
  notifications by one complex extension of Interlude's own (under the reserved `.invalid` domain, as the local code
  systems are), times as FHIR `time` values.
- The check-ins they were sent (prompts) as Tasks, each answered one with its answer as `output`, and the alerts
  raised on their data as Flags (`fhir.prompt_task`, `fhir.alert_flag`): what was asked of them and what their data
  set off is part of their record. Not the clinicians' acknowledge and resolve notes, which are staff-authored.

`own_workflow` reads the prompts and alerts, as `$everything` reads the rest of the record (one query each, a
patient's rows only); the rest are pure functions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from uuid import UUID

from api.domain.alert.models import Alert
from api.domain.diary.models import DiaryEntry
from api.domain.export import codes, fhir
from api.domain.export.fhir import Resource
from api.domain.patient.models import Patient
from api.domain.prompt.models import Prompt
from api.domain.questionnaire.models import QuestionnaireResponse

TIMEZONE = "http://hl7.org/fhir/StructureDefinition/timezone"
PREFERENCES = f"{codes.LOCAL_BASE}/StructureDefinition/patient-preferences"


def own_patient_resource(resource: Resource, patient: Patient, email: str | None) -> Resource:
    """The Patient resource of `fhir.patient_resource` with the patient's contact and preferences."""
    own: Resource = dict(resource)
    if email is not None:
        own["telecom"] = [{"system": "email", "value": email}]
    own["extension"] = [{"url": TIMEZONE, "valueCode": patient.timezone}, _preferences(patient)]
    return own


async def own_workflow(
    patient: Patient, entries: Iterable[DiaryEntry], responses: Iterable[QuestionnaireResponse]
) -> Iterator[Resource]:
    """The patient's prompts as Tasks (by due time), then the alerts raised on their data as Flags (by raise time).
    `entries` and `responses` are the ones the Bundle holds: an answered prompt's `output` points at them only."""
    prompts = await Prompt.filter(patient_id=patient.id).order_by("due_at", "id")
    alerts = await Alert.filter(patient_id=patient.id).order_by("raised_at", "id")
    answers = _answers(entries, responses)
    return _workflow(prompts, alerts, answers)


def _workflow(
    prompts: list[Prompt], alerts: list[Alert], answers: dict[UUID, list[dict[str, str]]]
) -> Iterator[Resource]:
    for prompt in prompts:
        yield fhir.prompt_task(prompt, answers.get(prompt.id, []))
    for alert in alerts:
        yield fhir.alert_flag(alert)


def _answers(
    entries: Iterable[DiaryEntry], responses: Iterable[QuestionnaireResponse]
) -> dict[UUID, list[dict[str, str]]]:
    """References to what answered each prompt: a response itself, or every Observation of a diary entry."""
    answers: defaultdict[UUID, list[dict[str, str]]] = defaultdict(list)
    for entry in entries:
        if entry.prompt_id is not None:
            observations = fhir.diary_observations(entry)
            answers[entry.prompt_id].extend(fhir.reference("Observation", o["id"]) for o in observations)
    for response in responses:
        if response.prompt_id is not None:
            answers[response.prompt_id].append(fhir.reference("QuestionnaireResponse", response.id))
    return answers


def _preferences(patient: Patient) -> Resource:
    return {
        "url": PREFERENCES,
        "extension": [
            {"url": "diaryTime", "valueTime": _time(patient.diary_time)},
            {"url": "quietHoursStart", "valueTime": _time(patient.quiet_hours_start)},
            {"url": "quietHoursEnd", "valueTime": _time(patient.quiet_hours_end)},
            {"url": "notificationsEnabled", "valueBoolean": patient.notifications_enabled},
        ],
    }


def _time(hhmm: str) -> str:
    return f"{hhmm}:00"
