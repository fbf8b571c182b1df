"""Recording and reading the audit trail.

Every staff read or write of patient data leaves one event per operation and patient: the first touch of a patient
in a request writes the event; further reads of the same patient in that request are covered by it. Security events
(a password change, an erasure, a patient's own export, the purge) are recorded whoever acts, patients and the
system included: `record_security_event`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID, uuid4

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.domain import sql
from api.domain.actor import Actor, Role
from api.domain.audit.models import AuditEvent, AuditSubject
from api.domain.clock import require_aware
from api.domain.errors import Forbidden
from api.domain.paging import Page, after_filter, make_page, page_size, parse_instant

OPERATION_LENGTH = 100


async def record(
    actor: Actor,
    action: str,
    patients: Sequence[UUID],
    *,
    now: datetime,
    object_id: UUID | None = None,
    write: bool = False,
    using_db: BaseDBAsyncClient | None = None,
) -> None:
    if not actor.is_staff:
        return
    seen = actor.meta.audited_patients
    if not write and patients and all(p in seen for p in patients):
        return
    # Marked before the first await: sibling fields of one query resolve concurrently, and each of them would
    # otherwise find the patient unmarked and write its own event.
    marked = {p for p in patients if p not in seen}
    seen.update(marked)
    try:
        await _insert(actor, action, patients, now=now, object_id=object_id, using_db=using_db)
    except BaseException:
        # Not recorded after all: a later read in this request must try again rather than go unaudited.
        seen.difference_update(marked)
        raise


async def record_security_event(
    actor: Actor,
    action: str,
    patients: Sequence[UUID] = (),
    *,
    now: datetime,
    object_id: UUID | None = None,
    using_db: BaseDBAsyncClient | None = None,
) -> None:
    """One event of its own, whoever acts: a stolen patient token that changes the password, erases the account or
    downloads the record must show in the trail, and so must the system's purge. The event and its subjects are
    written in one transaction (the caller's, when given)."""
    if using_db is None:
        async with in_transaction() as conn:
            await record_security_event(actor, action, patients, now=now, object_id=object_id, using_db=conn)
        return
    if actor.is_staff:
        # Through `record`, so that a later read of the same patients in this request is covered by this event.
        await record(actor, action, patients, now=now, object_id=object_id, write=True, using_db=using_db)
        return
    await _insert(actor, action, patients, now=now, object_id=object_id, using_db=using_db)


async def _insert(
    actor: Actor,
    action: str,
    patients: Sequence[UUID],
    *,
    now: datetime,
    object_id: UUID | None,
    using_db: BaseDBAsyncClient | None,
) -> None:
    # Written out (api/domain/sql.py): every staff read of patient data writes these two.
    event_id = uuid4()
    event = {
        "id": event_id,
        "clinic_id": actor.clinic_id,
        "actor_id": actor.account_id,
        "actor_role": actor.role.value,
        "action": action,
        "patient_id": patients[0] if len(patients) == 1 else None,
        "object_id": object_id,
        # The client names its operation: the column holds 100 characters (the ORM refused longer ones).
        "operation": actor.meta.operation[:OPERATION_LENGTH] if actor.meta.operation else None,
        "request_id": actor.meta.request_id or None,
        "ip": actor.meta.ip,
        "created_at": require_aware(now, "now"),
    }
    await sql.insert(AuditEvent, [event], using_db=using_db)
    subjects = [{"id": uuid4(), "event_id": event_id, "patient_id": p} for p in patients]
    await sql.insert(AuditSubject, subjects, using_db=using_db)


async def list_events(
    actor: Actor, *, patient_id: UUID | None, first: int | None, after: str | None
) -> Page[AuditEvent]:
    if actor.role is not Role.ADMIN:
        raise Forbidden("only clinic admins may read the audit log")
    size = page_size(first)
    query = AuditEvent.filter(clinic_id=actor.clinic_id)
    if patient_id is not None:
        query = query.filter(subjects__patient_id=patient_id)
    page_after = after_filter("created_at", after, parse_instant, descending=True)
    rows = await query.filter(page_after).order_by("-created_at", "-id").limit(size + 1).distinct()
    return make_page(rows, size, lambda e: (e.created_at, e.id))
