"""The one place that decides whether an actor may reach a patient's data."""

from __future__ import annotations

from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import DoesNotExist

from api.domain.actor import Actor, Role
from api.domain.alert.visibility import pending_critical
from api.domain.errors import Conflict, Forbidden, NotFound
from api.domain.patient.models import Patient, PatientStatus
from api.domain.sql import Where, select

# Whose diary is open: an invited patient has not started, a discharged or erased one has ended.
WRITABLE = (PatientStatus.ACTIVE, PatientStatus.PAUSED)


async def reachable_patient(
    actor: Actor, patient_id: UUID, *, known: Patient | None = None, using_db: BaseDBAsyncClient | None = None
) -> Patient:
    """The patient if the actor may see them; otherwise NOT_FOUND, exactly as for a missing id.

    `known`: the patient as this request has already read it (`Patient.diary` under `patient(id)`): judged again
    here, not read again. `using_db`: where to read (`sql.one_connection`'s, say): every statement of the check
    runs there.

    An erased patient is gone for everyone, with one exception: while a legal-retention hold keeps their clinical
    record (`retained_until` set, not yet purged), or a write that escaped the erasure left an unresolved critical
    alert after the purge, the clinic's staff still read it, under its pseudonym. The patient never reaches it: an
    access token issued before the erasure stays valid for minutes, and reaches nothing here.
    """
    if actor.is_patient and actor.patient_id != patient_id:
        raise NotFound("patient")
    if known is not None and known.id == patient_id and known.clinic_id == actor.clinic_id:
        patient: Patient | None = known
    else:
        # Written out (api/domain/sql.py): nearly every request of patient data starts here.
        where = Where('"id" = {} AND "clinic_id" = {}', patient_id, actor.clinic_id)
        found = await select(Patient, where, using_db=using_db)
        patient = found[0] if found else None
    if patient is None or not await _reaches(actor, patient, using_db):
        raise NotFound("patient")
    return patient


async def lock_patient(patient_id: UUID, conn: BaseDBAsyncClient) -> Patient:
    """The patient read again inside a write's transaction, their row locked until it ends; the caller checks again
    what it checked before the transaction (`require_writable`, `require_not_erased`).

    For every write that adds to a patient's clinical record or may raise an alert. The erasure takes the same lock
    first, so the two never overlap: either the erasure committed first and the write is refused as any call of an
    erased patient is, or the erasure waits for the write and then holds or purges what it wrote. A check made
    before the transaction does not do: an erasure committing between it and the insert left a diary entry, and an
    open alert, behind a purge that had already happened. On SQLite, where the lock is a no-op, transactions run one
    at a time, and this read, inside the transaction, sees any erasure committed before it.
    """
    found = await _locked(Where('"id" = {}', patient_id), conn)
    if found is None:
        raise DoesNotExist(Patient)
    return found


async def lock_own_patient(actor: Actor, conn: BaseDBAsyncClient) -> Patient:
    """For a patient's own write that reads nothing before its transaction (`DiaryService.log`): their row, locked
    as `lock_patient` locks it, and judged as `reachable_patient` then `require_writable` judge a patient's own
    call: NOT_FOUND if it is not theirs or is erased, FORBIDDEN while their diary is not open."""
    found = await _locked(Where('"id" = {} AND "clinic_id" = {}', require_patient(actor), actor.clinic_id), conn)
    if found is None:
        raise NotFound("patient")
    return require_writable(found)


async def _locked(where: Where, conn: BaseDBAsyncClient) -> Patient | None:
    # FOR NO KEY UPDATE: waits for an erasure's FOR UPDATE and makes it wait, but lets rows that merely reference
    # the patient (audit events, prompts) be inserted meanwhile.
    found = await select(Patient, where, lock="NO KEY UPDATE", using_db=conn)
    return found[0] if found else None


def require_writable(patient: Patient) -> Patient:
    """For the patient's own writes (diary, questionnaires): NOT_FOUND once erased, as every call of theirs is then;
    FORBIDDEN while their diary is not open."""
    require_not_gone(patient)
    if patient.status not in WRITABLE:
        raise Forbidden("this diary is closed")
    return patient


async def _reaches(actor: Actor, patient: Patient, using_db: BaseDBAsyncClient | None) -> bool:
    if patient.status is not PatientStatus.ERASED:
        return True
    return actor.is_staff and (is_held(patient) or await _left_with_critical_alert(patient, using_db))


def is_held(patient: Patient) -> bool:
    """An erased patient's clinical record is still kept under a legal-retention hold."""
    return patient.status is PatientStatus.ERASED and patient.retained_until is not None and patient.erased_at is None


async def _left_with_critical_alert(patient: Patient, using_db: BaseDBAsyncClient | None) -> bool:
    """A record purged, yet with an unresolved critical alert: only a write that escaped the erasure leaves one.
    Staff reach it as they reach a held record, to deal with the alert (`visibility.unreachable_patients` lists it),
    and the purge takes what was left once it is resolved."""
    if patient.erased_at is None:
        return False
    # On the caller's connection: one held by `sql.one_connection` must wait for no other (a full pool never frees one).
    return await pending_critical().filter(patient_id=patient.id).using_db(using_db).exists()


def require_not_gone(patient: Patient) -> None:
    """For the patient's own calls, checked again under their lock (`lock_patient`): once erased, NOT_FOUND, as for
    a missing id."""
    if patient.status is PatientStatus.ERASED:
        raise NotFound("patient")


def require_not_erased(patient: Patient) -> None:
    """For staff writes: a held record is read-only, kept as it was when the patient was erased."""
    if patient.status is PatientStatus.ERASED:
        raise Conflict("the patient is erased: their record is kept read-only until its retention ends")


def require_staff(actor: Actor) -> None:
    if not actor.is_staff:
        raise Forbidden("clinic staff only")


def require_patient(actor: Actor) -> UUID:
    if actor.role is not Role.PATIENT or actor.patient_id is None:
        raise Forbidden("patients only")
    return actor.patient_id
