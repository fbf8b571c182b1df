"""Which patients' alerts the clinic's staff can no longer reach: one rule for the list, the feed and escalation.

It is `access.reachable_patient`'s rule for staff, as a query: an erased patient's alerts stay in reach while a
legal-retention hold keeps the record (a self-harm alert must not vanish because the patient erased their account),
and are out of reach once the record is purged, or for a patient marked ERASED by hand with no hold. An alert
out of reach is neither listed nor escalated: admins are never called about an alert they cannot open.

One exception to "purged": an unresolved critical alert found after the purge, which only a write that escaped the
erasure's lock can leave (every patient write takes it, `access.lock_patient`). Its patient counts as held: the
alert is listed and escalated, and the purge takes what was left once it is resolved.
"""

from __future__ import annotations

from uuid import UUID

from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from api.domain.alert.models import Alert, AlertStatus, Severity
from api.domain.patient.models import Patient, PatientStatus


def pending_critical() -> QuerySet[Alert]:
    """The alerts that keep an erased patient's record from the purge and in staff's reach: critical, unresolved."""
    return Alert.filter(severity=Severity.CRITICAL, status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED])


def unreachable_patients(clinic_id: UUID | None = None) -> Subquery:
    """The ids of the erased patients (of one clinic, or of all) whose record no hold keeps any more."""
    held = Q(retained_until__isnull=False, erased_at__isnull=True)
    left_behind = Q(erased_at__isnull=False, id__in=Subquery(pending_critical().values("patient_id")))
    query = Patient.filter(status=PatientStatus.ERASED).exclude(held | left_behind)
    if clinic_id is not None:
        query = query.filter(clinic_id=clinic_id)
    return Subquery(query.values("id"))
