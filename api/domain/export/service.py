"""Exports of patient records: FHIR R4 ($everything), clinic bulk NDJSON and diary CSV. Every export is audited.

Who may export what:
- `$everything` and a patient's diary CSV: the clinic's clinicians and admins, and the patient themself.
- The whole clinic (bulk NDJSON, clinic-wide CSV): admins only. One request takes every patient's record out of the
  system, the widest leak path there is; clinicians keep per-patient exports.

Audit: one event per export, written before any data leaves. A patient's own export is recorded too
(`audit.record_security_event`): a stolen patient token that downloads the record must show in the trail. A clinic-wide
export writes one `export.bulk` / `export.csv` event with every exported patient as a subject, so the trail of each
patient (`auditEvents(patientId:)`) shows that their record left in it. The subjects are written before streaming
starts, in the event's transaction, from the patient id list read in keyset batches: memory stays flat, and the event
is complete even if the client disconnects after the first line. The stream then covers exactly the patients that
were attributed: exportable ones created at or before the export's `now` (a patient registered while the export
runs is in neither). The one gap left is a registration whose transaction commits between the subject list and the
stream with a `created_at` before `now`: a window of one insert's commit.

A patient's own export (GDPR Art. 20: `$everything` on their own id, or `/export/me`) is their whole record: the
Patient with their sign-in email and preferences (`portability`), every diary entry (deleted ones as entered-in-error,
edited ones amended), every questionnaire response with its scores, their sessions, without dose and clinician
notes (clinic-side data, which the API does not show them either), the check-ins they were sent as Tasks and the
alerts raised on their data as Flags, without the clinicians' acknowledge and resolve notes (`portability`). Left
out: devices (push credentials) and the audit trail (asked for under Art. 15, it is the clinic admin's to hand over).

Streams are opened in two steps: the awaited call checks access and writes the audit event (so a refusal is an
ordinary error response), then the returned iterator reads keyset batches of `batch_size` rows, so memory stays flat
however many rows the clinic has.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from itertools import chain
from typing import Any, TypeVar
from uuid import UUID

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from api.domain.account.models import Account
from api.domain.actor import Actor, Role
from api.domain.audit import service as audit
from api.domain.audit.models import AuditEvent, AuditSubject
from api.domain.diary.models import DiaryEntry
from api.domain.errors import Forbidden
from api.domain.export import fhir, portability, spreadsheet
from api.domain.patient.access import reachable_patient, require_patient
from api.domain.patient.models import Patient, PatientStatus
from api.domain.questionnaire.models import QuestionnaireResponse
from api.domain.treatment.models import InfusionSession

M = TypeVar("M", bound=Model)

BATCH_SIZE = 1000
# Erased patients' rows are gone or going; an export must not resurrect what is left of them.
EXPORTABLE = [s for s in PatientStatus if s is not PatientStatus.ERASED]


class ExportService:
    def __init__(self, batch_size: int = BATCH_SIZE) -> None:
        self.batch_size = batch_size

    async def patient_everything(
        self, actor: Actor, patient_id: UUID, *, base_url: str, now: datetime
    ) -> fhir.Resource:
        """A searchset Bundle of everything held on the patient. `base_url` is the FHIR base the ids resolve under."""
        patient = await reachable_patient(actor, patient_id)
        await _audit(actor, "export.fhir", patient.id, now=now)
        entries = await DiaryEntry.filter(patient_id=patient.id).order_by("recorded_at", "id")
        responses = await QuestionnaireResponse.filter(patient_id=patient.id).order_by("authored_at", "id")
        sessions = await InfusionSession.filter(patient_id=patient.id).order_by("starts_at", "id")
        resources = fhir.iter_patient_resources(patient, entries, responses, sessions, clinical=actor.is_staff)
        if actor.is_patient:
            workflow = await portability.own_workflow(patient, entries, responses)
            resources = chain(_own(resources, patient, await _email(patient)), workflow)
        self_url = f"{base_url}/Patient/{patient.id}/$everything"
        return fhir.searchset(resources, base_url=base_url, self_url=self_url, now=now)

    async def own_record(self, actor: Actor, *, base_url: str, now: datetime) -> fhir.Resource:
        """The signed-in patient's whole record (GDPR Art. 20), the Bundle of their own `$everything`."""
        return await self.patient_everything(actor, require_patient(actor), base_url=base_url, now=now)

    async def clinic_ndjson(self, actor: Actor, *, now: datetime) -> AsyncIterator[str]:
        """Every live patient of the clinic and their records, one FHIR resource per line."""
        require_admin(actor)
        await self._audit_clinic(actor, "export.bulk", now=now)
        return self._ndjson(actor.clinic_id, now)

    async def diary_csv(self, actor: Actor, patient_id: UUID | None, *, now: datetime) -> AsyncIterator[str]:
        """One patient's live diary entries as CSV lines (header first); without a patient, the whole clinic's.
        A patient who names no one gets their own diary."""
        if patient_id is None and actor.is_patient:
            patient_id = actor.patient_id
        if patient_id is None:
            require_admin(actor)
            await self._audit_clinic(actor, "export.csv", now=now)
            query = DiaryEntry.filter(_owned_by_exported(actor.clinic_id, now), deleted_at=None)
            return self._csv(query, {})
        patient = await reachable_patient(actor, patient_id)
        await _audit(actor, "export.csv", patient.id, now=now)
        return self._csv(DiaryEntry.filter(patient_id=patient.id, deleted_at=None), {patient.id: patient.display_name})

    async def _audit_clinic(self, actor: Actor, action: str, *, now: datetime) -> None:
        """One event with every patient a clinic-wide export covers as a subject, all in one transaction."""
        async with in_transaction() as conn:
            event = await AuditEvent.create(using_db=conn, **_event_fields(actor, action, None, now))
            ids = _exported_patients(actor.clinic_id, now).only("id").using_db(conn)
            async for batch in self._batches(ids):
                subjects = [AuditSubject(event_id=event.id, patient_id=p.id) for p in batch]
                await AuditSubject.bulk_create(subjects, using_db=conn)

    async def _ndjson(self, clinic_id: UUID, now: datetime) -> AsyncIterator[str]:
        async for patient in self._rows(_exported_patients(clinic_id, now)):
            yield _line(fhir.patient_resource(patient))
        owned = _owned_by_exported(clinic_id, now)
        async for entry in self._rows(DiaryEntry.filter(owned)):
            for resource in fhir.diary_observations(entry):
                yield _line(resource)
        async for response in self._rows(QuestionnaireResponse.filter(owned)):
            for resource in fhir.questionnaire_resources(response):
                yield _line(resource)
        async for session in self._rows(InfusionSession.filter(owned)):
            for resource in fhir.session_resources(session, clinical=True):
                yield _line(resource)

    async def _csv(self, entries: QuerySet[DiaryEntry], names: dict[UUID, str]) -> AsyncIterator[str]:
        yield spreadsheet.to_lines([spreadsheet.HEADER])
        async for batch in self._batches(entries, "recorded_at"):
            await _learn_names(names, (e.patient_id for e in batch))
            for entry in batch:
                yield spreadsheet.to_lines([spreadsheet.entry_row(entry, names[entry.patient_id])])
            # Let go before the next batch is read (see _rows).
            batch.clear()

    async def _rows(self, query: QuerySet[M], key: str = "id") -> AsyncIterator[M]:
        """The rows of `_batches` one by one, each let go once it is handed on: while the next batch is read, none
        of the last one is still held here or by the caller, so memory is one batch, not two."""
        async for batch in self._batches(query, key):
            batch.reverse()
            while batch:
                yield batch.pop()

    async def _batches(self, query: QuerySet[M], key: str = "id") -> AsyncIterator[list[M]]:
        """Rows in (key, id) order, `batch_size` per query, each query starting after the last row seen: no
        OFFSET scans, and rows written during the export cannot shift a page boundary."""
        after = Q()
        while True:
            rows = await query.filter(after).order_by(key, "id").limit(self.batch_size)
            if len(rows) < self.batch_size:
                if rows:
                    yield rows
                return
            after = _after(rows[-1], key)
            yield rows


def _exported_patients(clinic_id: UUID, now: datetime) -> QuerySet[Patient]:
    return Patient.filter(clinic_id=clinic_id, status__in=EXPORTABLE, created_at__lte=now)


def _owned_by_exported(clinic_id: UUID, now: datetime) -> Q:
    """Rows of the patients `_exported_patients` lists: the same predicate, through the row's patient."""
    return Q(clinic_id=clinic_id, patient__status__in=EXPORTABLE, patient__created_at__lte=now)


def require_admin(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise Forbidden("clinic-wide exports are for clinic admins")


def _after(row: Model, key: str) -> Q:
    row_id = row.pk
    if key == "id":
        return Q(id__gt=row_id)
    value = getattr(row, key)
    return Q(**{f"{key}__gt": value}) | Q(**{key: value, "id__gt": row_id})


async def _learn_names(names: dict[UUID, str], patient_ids: Iterable[UUID]) -> None:
    missing = {p for p in patient_ids if p not in names}
    if missing:
        rows = await Patient.filter(id__in=missing).values_list("id", "display_name")
        names.update((UUID(str(pid)), str(name)) for pid, name in rows)


def _own(resources: Iterator[fhir.Resource], patient: Patient, email: str | None) -> Iterator[fhir.Resource]:
    """A patient's own export: their Patient resource (always first) with their contact and preferences."""
    yield portability.own_patient_resource(next(resources), patient, email)
    yield from resources


async def _email(patient: Patient) -> str | None:
    if patient.account_id is None:
        return None
    return str(await Account.get(id=patient.account_id).values_list("email", flat=True))


def _line(resource: fhir.Resource) -> str:
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n"


async def _audit(actor: Actor, action: str, patient_id: UUID, *, now: datetime) -> None:
    # Every export is its own event, even after a read of the same patient in this request, and a patient's own too.
    await audit.record_security_event(actor, action, [patient_id], now=now)


def _event_fields(actor: Actor, action: str, patient_id: UUID | None, now: datetime) -> dict[str, Any]:
    return {
        "clinic_id": actor.clinic_id,
        "actor_id": actor.account_id,
        "actor_role": actor.role.value,
        "action": action,
        "patient_id": patient_id,
        "operation": actor.meta.operation,
        "request_id": actor.meta.request_id or None,
        "ip": actor.meta.ip,
        "created_at": now,
    }
