"""What a patient's own export (GDPR Art. 20) adds to the Patient resource: what they told us about themself
beyond the clinical record. Pure functions: no queries, no access checks.

- The sign-in email as a `telecom`: theirs to take along. The clinic's exports leave it out (a login credential is
  not part of the clinical record).
- Their preferences as extensions: the time zone by HL7's `timezone` extension; diary time, quiet hours and
  notifications by one complex extension of Interlude's own (under the reserved `.invalid` domain, as the local code
  systems are), times as FHIR `time` values.
"""

from __future__ import annotations

from api.domain.export import codes
from api.domain.export.fhir import Resource
from api.domain.patient.models import Patient

TIMEZONE = "http://hl7.org/fhir/StructureDefinition/timezone"
PREFERENCES = f"{codes.LOCAL_BASE}/StructureDefinition/patient-preferences"


def own_patient_resource(resource: Resource, patient: Patient, email: str | None) -> Resource:
    """The Patient resource of `fhir.patient_resource` with the patient's contact and preferences."""
    own: Resource = dict(resource)
    if email is not None:
        own["telecom"] = [{"system": "email", "value": email}]
    own["extension"] = [{"url": TIMEZONE, "valueCode": patient.timezone}, _preferences(patient)]
    return own


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
