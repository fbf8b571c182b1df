"""DiaryService directly: races on clientId, the backfill window, revisions, the latest-entry loader, audit."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from uuid import uuid4

import pytest
import pytest_asyncio
from tortoise.connection import connections

from api.domain.actor import Role
from api.domain.audit.models import AuditEvent
from api.domain.diary.models import DiaryEntry, DiaryEntryRevision
from api.domain.diary.service import SyncStatus
from api.domain.diary.validation import DiaryInput
from api.domain.errors import BadInput, Conflict, Forbidden, NotFound
from api.domain.services import Services
from tests.conftest import Database, count_acquisitions, count_queries
from tests.factories import Factory, PatientUser
from tests.schema.diary_support import stored


@pytest_asyncio.fixture
async def alice(factory: Factory, now: datetime) -> PatientUser:
    return await factory.patient(await factory.clinic(), joined=now - timedelta(days=60))


def report(now: datetime, **values: object) -> DiaryInput:
    return DiaryInput(client_id=uuid4(), recorded_at=now - timedelta(hours=1), **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("round_", range(4))
async def test_concurrent_logs_of_one_entry_store_it_once(
    services: Services, alice: PatientUser, now: datetime, round_: int
) -> None:
    # Rounds, because whether the calls interleave depends on the backend's scheduling; the deterministic
    # version of the lost race is the next test.
    data = report(now, pain_now=round_, sleep_hours=7.6)
    entries = await asyncio.gather(*(services.diary.log(alice.actor, data, now=now) for _ in range(5)))
    assert {e.id for e in entries} == {entries[0].id}
    rows = await DiaryEntry.filter(patient_id=alice.patient.id)
    assert [r.id for r in rows] == [entries[0].id]


async def test_an_insert_that_loses_the_race_returns_the_winner(
    services: Services, alice: PatientUser, now: datetime
) -> None:
    data = report(now, pain_now=4)
    winner = await services.diary.log(alice.actor, data, now=now)
    before = await stored()
    window = services.diary._window(alice.patient, now)
    # As if our lookup ran just before the winner's insert: it found nothing, so we insert too, and store nothing.
    outcome = await services.diary._store(alice.patient, data, window, {}, now)
    assert (outcome.status, outcome.entry and outcome.entry.id) == (SyncStatus.UNCHANGED, winner.id)
    other = await services.diary._store(alice.patient, replace(data, pain_now=5), window, {}, now)
    assert (other.status, other.entry) == (SyncStatus.CONFLICT, None)
    assert isinstance(other.error, Conflict)
    assert await stored() == before


async def test_a_log_locks_the_patient_before_it_reads_or_writes_anything(
    db: Database, services: Services, alice: PatientUser, now: datetime
) -> None:
    data = report(now, pain_now=3)
    with count_queries() as counter:
        entry = await services.diary.log(alice.actor, data, now=now)
    # The patient, locked; the entry; what the alert rules read (the clinic's thresholds, the latest infusion).
    assert counter.statements == ["SELECT", "INSERT", "SELECT", "SELECT"]
    assert 'FROM "patient" WHERE "id" = ' in counter.texts[0]
    assert ' AND "clinic_id" = ' in counter.texts[0]
    if db.backend == "postgres":
        assert counter.texts[0].endswith("FOR NO KEY UPDATE")
    assert [e.id for e in await DiaryEntry.filter(patient_id=alice.patient.id)] == [entry.id]

    with count_queries() as counter:
        again = await services.diary.log(alice.actor, data, now=now)
    # A resend: the patient, locked; the insert that stores nothing; the entry stored under its clientId.
    assert counter.statements == ["SELECT", "INSERT", "SELECT"]
    assert again.id == entry.id


async def test_a_log_is_refused_for_a_patient_of_another_clinic_for_staff_and_for_a_patient_not_stored(
    services: Services, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic(), Role.CLINICIAN)
    elsewhere = replace(alice.actor, clinic_id=staff.actor.clinic_id)
    nobody = replace(alice.actor, patient_id=uuid4())
    before = await stored()

    for actor, refusal in ((elsewhere, NotFound), (nobody, NotFound), (staff.actor, Forbidden)):
        with pytest.raises(refusal):
            await services.diary.log(actor, report(now, pain_now=2), now=now)

    assert await stored() == before


async def test_of_concurrent_logs_with_different_content_one_is_stored_and_the_others_conflict(
    services: Services, alice: PatientUser, now: datetime
) -> None:
    base = report(now, pain_now=1)
    variants = [replace(base, pain_now=p) for p in (1, 2, 3)]
    results = await asyncio.gather(
        *(services.diary.log(alice.actor, v, now=now) for v in variants), return_exceptions=True
    )
    stored_rows = await DiaryEntry.filter(client_id=base.client_id)
    assert len(stored_rows) == 1
    winners = [r for r in results if isinstance(r, DiaryEntry)]
    assert [w.pain_now for w in winners] == [stored_rows[0].pain_now]
    losers = [r for r in results if not isinstance(r, DiaryEntry)]
    assert len(losers) == 2
    assert all(isinstance(e, Conflict) and e.field == "client_id" for e in losers)


async def test_concurrent_syncs_of_one_queue_store_each_entry_once(
    services: Services, alice: PatientUser, now: datetime
) -> None:
    batch = [report(now - timedelta(hours=i), mood=i % 11) for i in range(15)]
    first, second = await asyncio.gather(
        services.diary.sync(alice.actor, batch, now=now), services.diary.sync(alice.actor, batch, now=now)
    )
    assert await DiaryEntry.all().count() == 15
    for a, b in zip(first, second, strict=True):
        assert {a.status, b.status} <= {SyncStatus.CREATED, SyncStatus.UNCHANGED}
        assert a.entry is not None
        assert b.entry is not None
        assert a.entry.id == b.entry.id
    assert sum(o.status is SyncStatus.CREATED for o in [*first, *second]) == 15


async def test_the_backfill_window_opens_fourteen_days_before_registration(
    services: Services, factory: Factory, now: datetime
) -> None:
    registered = now - timedelta(days=3)
    who = await factory.patient(await factory.clinic(), joined=registered)
    # Invited long before registering: the window still counts from registration.
    who.patient.created_at = registered - timedelta(days=30)
    await who.patient.save(update_fields=["created_at"])
    earliest = registered - timedelta(days=14)

    entry = await services.diary.log(who.actor, replace(report(now, pain_now=3), recorded_at=earliest), now=now)
    assert entry.recorded_at == earliest
    before = await stored()
    with pytest.raises(BadInput) as caught:
        await services.diary.log(
            who.actor, replace(report(now, pain_now=3), recorded_at=earliest - timedelta(seconds=1)), now=now
        )
    assert caught.value.field == "recorded_at"
    assert await stored() == before


async def test_the_future_limit_follows_the_clock_passed_in(
    services: Services, alice: PatientUser, now: datetime
) -> None:
    later = now + timedelta(days=1)
    data = replace(report(now, pain_now=3), recorded_at=later)
    with pytest.raises(BadInput):
        await services.diary.log(alice.actor, data, now=now)
    assert await DiaryEntry.all().count() == 0
    entry = await services.diary.log(alice.actor, data, now=later)
    assert entry.created_at == later


async def test_fields_that_cannot_be_patched_are_refused(
    services: Services, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    entry = await factory.entry(alice)
    before = await stored()
    for patch in ({"client_id": uuid4()}, {"prompt_id": uuid4()}, {"version": 9}, {"deleted_at": None}):
        with pytest.raises(BadInput):
            await services.diary.update(alice.actor, entry.id, patch, expected_version=None, now=now)
    assert await stored() == before


async def test_revisions_record_each_state_before_it_changed(
    services: Services, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    entry = await factory.entry(alice, pain_now=6, note="first")
    await services.diary.update(alice.actor, entry.id, {"note": "second"}, expected_version=1, now=now)
    await services.diary.update(alice.actor, entry.id, {"pain_now": 2}, expected_version=2, now=now)
    await services.diary.delete(alice.actor, entry.id, now=now)
    revisions = await DiaryEntryRevision.filter(entry_id=entry.id).order_by("version")
    assert [(r.version, r.reason, r.snapshot["note"], r.snapshot["pain_now"]) for r in revisions] == [
        (1, "updated", "first", 6),
        (2, "updated", "second", 6),
        (3, "entered_in_error", "second", 2),
    ]
    row = await DiaryEntry.get(id=entry.id)
    assert (row.version, row.note, row.pain_now, row.deleted_at) == (4, "second", 2, now)


async def test_another_patients_entry_is_not_found_for_update_and_delete(
    services: Services, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    entry = await factory.entry(alice)
    bob = await factory.patient(await alice.patient.clinic)
    before = await stored()
    with pytest.raises(NotFound):
        await services.diary.update(bob.actor, entry.id, {"pain_now": 1}, expected_version=None, now=now)
    with pytest.raises(NotFound):
        await services.diary.delete(bob.actor, entry.id, now=now)
    assert await stored() == before


async def test_latest_entry_per_patient_skips_deleted_entries_and_other_clinics(
    services: Services, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    clinic = await alice.patient.clinic
    bob = await factory.patient(clinic)
    nobody = await factory.patient(clinic)
    await factory.entry(alice, recorded_at=now - timedelta(hours=5))
    alices_latest = await factory.entry(alice, recorded_at=now - timedelta(hours=2))
    newest_but_deleted = await factory.entry(alice, recorded_at=now - timedelta(hours=1))
    await services.diary.delete(alice.actor, newest_but_deleted.id, now=now)
    bobs = await factory.entry(bob, recorded_at=now - timedelta(days=2))
    ids = [alice.patient.id, bob.patient.id, nobody.patient.id]

    staff = await factory.staff(clinic)
    with count_queries() as counter:
        latest = await services.overview.latest_entries(staff.actor, ids, now=now)
    # One SELECT however many patients or entries, and the staff read's audit event (the event, its subjects).
    assert counter.statements == ["SELECT", "INSERT", "INSERT"]
    assert {p: e.id for p, e in latest.items()} == {alice.patient.id: alices_latest.id, bob.patient.id: bobs.id}

    mine = await services.overview.latest_entries(alice.actor, ids, now=now)
    assert {p: e.id for p, e in mine.items()} == {alice.patient.id: alices_latest.id}
    outsider = await factory.staff(await factory.clinic())
    assert await services.overview.latest_entries(outsider.actor, ids, now=now) == {}


async def test_staff_reads_are_audited_and_patient_reads_are_not(
    services: Services, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    await factory.entry(alice)
    staff = await factory.staff(await alice.patient.clinic)
    page_args = {"first": None, "after": None, "start": None, "end": None, "include_deleted": False, "now": now}
    await services.diary.entries(alice.actor, alice.patient.id, **page_args)  # type: ignore[arg-type]
    assert await AuditEvent.filter(action="diary.read").count() == 0
    page = await services.diary.entries(staff.actor, alice.patient.id, **page_args)  # type: ignore[arg-type]
    assert len(page.items) == 1
    events = await AuditEvent.filter(action="diary.read")
    assert [(e.actor_id, e.patient_id) for e in events] == [(staff.account.id, alice.patient.id)]


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_a_page_reads_the_patient_and_writes_its_audit_on_one_connection(
    db: Database, services: Services, factory: Factory, alice: PatientUser, now: datetime
) -> None:
    """As the floor of bench/api.py does: one connection taken from the pool for the patient, the page and the audit
    event (each statement would take its own), and given back."""
    await factory.entry(alice)
    staff = await factory.staff(await alice.patient.clinic)
    page_args = {"first": None, "after": None, "start": None, "end": None, "include_deleted": False, "now": now}
    for actor, statements in (
        (alice.actor, ["SELECT", "SELECT"]),
        (staff.actor, ["SELECT", "SELECT", "INSERT", "INSERT"]),
    ):
        with count_acquisitions() as taken, count_queries() as counter:
            page = await services.diary.entries(actor, alice.patient.id, **page_args)  # type: ignore[arg-type]
        assert len(page.items) == 1
        assert counter.statements == statements
        assert len(taken) == 1
    with count_acquisitions() as taken, pytest.raises(NotFound):
        await services.diary.entries(staff.actor, uuid4(), **page_args)  # type: ignore[arg-type]
    assert len(taken) == 1
    pool = connections.get("default")._pool
    assert pool.get_idle_size() == pool.get_size()
