"""The `erasure.purge` pass: a held record stays until its hold ends, then goes with everything under it; batches and
replicas share the work so that each patient is purged once; the tombstone and the audit trail remain. The same pass
cancels, or deletes behind a purge, the prompts a replan wrote after an erasure, and none of them is pushed."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
import pytest_asyncio

from api.container import build_job_config
from api.domain.actor import Role
from api.domain.audit.models import AuditEvent
from api.domain.diary.models import DiaryEntry
from api.domain.errors import NotFound
from api.domain.patient.erasure import purge_held_records, purge_late_prompts
from api.domain.patient.models import Patient
from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.push import outbox
from api.domain.push.models import PushMessage
from api.domain.services import Services
from jobs.passes import purge_erased, tick
from jobs.scheduler import SCHEDULE
from tests.conftest import make_settings
from tests.domain.test_patient_erasure import clinical_counts
from tests.erasure_support import RETENTION, World, erasure_service, resolve_alerts, table_dump, world
from tests.factories import PASSWORD, Factory, Staff

CONFIG = build_job_config(make_settings())


@pytest_asyncio.fixture
async def w(factory: Factory, services: Services, now: datetime) -> World:
    held = await world(factory, services, now)
    await erasure_service(services).erase_patient(
        held.admin.actor, held.alice.patient.id, "by letter", password=PASSWORD, now=now
    )
    return held


def counts(purged: int = 0, cancelled: int = 0, deleted: int = 0) -> dict[str, int]:
    return {"purged": purged, "prompts_cancelled": cancelled, "prompts_deleted": deleted}


def end_of_hold(w: World) -> datetime:
    return w.latest_entry.recorded_at + RETENTION


async def test_the_record_stays_until_its_hold_ends(w: World) -> None:
    before = await clinical_counts(w.alice.patient.id)
    stored = await table_dump()

    assert await purge_erased(CONFIG, end_of_hold(w) - timedelta(seconds=1)) == counts()

    assert await clinical_counts(w.alice.patient.id) == before
    assert (await table_dump())["patient"] == stored["patient"]


async def test_when_the_hold_ends_the_record_goes_and_the_tombstone_stays(w: World, services: Services) -> None:
    bob_before = await clinical_counts(w.bob.patient.id)
    at = end_of_hold(w)
    # Her chest-pain alert is critical: the record stays until a clinician resolves it.
    assert await purge_erased(CONFIG, at) == counts()
    await resolve_alerts(services, w, at)

    assert await purge_erased(CONFIG, at) == counts(purged=1)

    assert set((await clinical_counts(w.alice.patient.id)).values()) == {0}
    assert await clinical_counts(w.bob.patient.id) == bob_before
    tombstone = await Patient.get(id=w.alice.patient.id)
    assert (tombstone.erased_at, tombstone.retained_until, tombstone.timezone) == (at, at, "UTC")
    assert tombstone.display_name == f"Erased patient {w.alice.patient.id.hex[:8]}"
    [event] = await AuditEvent.filter(action="patient.purge")
    assert (event.actor_id, event.actor_role, event.patient_id, event.clinic_id, event.created_at) == (
        None, "SYSTEM", w.alice.patient.id, w.clinic.id, at
    )  # fmt: skip
    # The erasure's own event is kept: the trail outlives the record.
    assert await AuditEvent.filter(action="patient.erase", patient_id=w.alice.patient.id).exists()
    with pytest.raises(NotFound):
        await services.patients.get(w.clinician.actor, w.alice.patient.id, now=at)
    # Every pass runs it; the next run has nothing left to do.
    assert (await tick(CONFIG, at + timedelta(days=1)))["erasure.purge"] == counts()


async def held_patients(factory: Factory, services: Services, count: int, now: datetime) -> tuple[Staff, list[UUID]]:
    """`count` erased patients whose holds end `count` days apart, each with one diary entry."""
    clinic = await factory.clinic()
    admin = await factory.staff(clinic, Role.ADMIN)
    erasure = erasure_service(services, timedelta(days=30))
    ids = []
    for n in range(count):
        invited = await services.patients.invite(
            admin.actor, display_name=f"Held {n}", email=None, timezone="UTC", now=now
        )
        await DiaryEntry.create(
            clinic_id=clinic.id, patient_id=invited.patient.id, client_id=uuid4(), client_hash="0" * 64,
            recorded_at=now - timedelta(days=n), utc_offset_minutes=0, pain_now=n, created_at=now, updated_at=now,
        )  # fmt: skip
        await erasure.erase_patient(admin.actor, invited.patient.id, "by letter", password=PASSWORD, now=now)
        ids.append(invited.patient.id)
    return admin, ids


async def test_batches_purge_every_patient_whose_hold_has_ended_and_only_those(
    factory: Factory, services: Services, now: datetime
) -> None:
    _, ids = await held_patients(factory, services, 5, now)
    # Holds end at now + 30 days - n days: on day 28 those of patients 2, 3 and 4 have ended.
    at = now + timedelta(days=28)

    assert await purge_held_records(now=at, batch=2) == 3

    purged = set(await Patient.filter(erased_at=at).values_list("id", flat=True))
    assert purged == set(ids[2:])
    assert set(await DiaryEntry.all().values_list("patient_id", flat=True)) == set(ids[:2])


async def test_two_replicas_at_once_purge_each_patient_once(
    factory: Factory, services: Services, now: datetime
) -> None:
    _, ids = await held_patients(factory, services, 5, now)
    at = now + timedelta(days=30)

    counts = await asyncio.gather(purge_held_records(now=at, batch=2), purge_held_records(now=at, batch=2))

    assert sum(counts) == 5
    events = await AuditEvent.filter(action="patient.purge").values_list("patient_id", flat=True)
    assert sorted(events) == sorted(ids)
    assert not await DiaryEntry.exists()


def test_the_scheduler_runs_the_purge_at_least_daily() -> None:
    [(_, _, every)] = [job for job in SCHEDULE if job[0] == "erasure.purge"]
    assert timedelta(**every) <= timedelta(days=1)


# --- prompts a replan wrote after the erasure -------------------------------------------------------------------------
# A service replans the patient it read after its own transaction committed; an erasure that committed in between may
# see prompts created or revived after it (the planner's own check leaves only the instant of its writes). The state
# such a replan leaves is made directly here.


async def late_prompt(patient: Patient, at: datetime, anchor: str, **fields: Any) -> Prompt:
    """A prompt the plan newly owes, as a late replan creates it."""
    values: dict[str, Any] = {
        "due_at": at + timedelta(days=1), "deliver_at": at + timedelta(days=1), "expires_at": at + timedelta(days=2),
        "status": PromptStatus.SCHEDULED,
    }  # fmt: skip
    values.update(fields)
    return await Prompt.create(
        clinic_id=patient.clinic_id, patient_id=patient.id, plan_id=uuid4(), rule_id="daily_diary", anchor=anchor,
        instrument="daily_diary", created_at=at, updated_at=at, **values,
    )  # fmt: skip


async def test_prompts_planned_after_the_erasure_reach_no_one_and_are_cancelled_in_the_held_record(
    w: World, now: datetime
) -> None:
    alice = w.alice.patient
    at = now + timedelta(hours=1)
    [sent] = await Prompt.filter(patient_id=alice.id, status=PromptStatus.SENT)
    cancelled = await Prompt.filter(patient_id=alice.id, status=PromptStatus.CANCELLED).order_by("due_at")
    due, later = cancelled[-2:]
    untouched = [p.id for p in cancelled[:-2]]
    # Sent before the erasure, its window closes after it, as usual.
    await Prompt.filter(id=sent.id).update(status=PromptStatus.EXPIRED, expired_at=at)
    before = await Prompt.filter(id__in=[sent.id, *untouched]).order_by("id").values()
    bob_before = await Prompt.filter(patient_id=w.bob.patient.id).order_by("id").values()
    # Revived (one of them due at once), created, and created then expired unsent (the dispatcher was down).
    revived = {"status": PromptStatus.SCHEDULED, "cancelled_at": None, "updated_at": now}
    await Prompt.filter(id=due.id).update(deliver_at=at, expires_at=at + timedelta(hours=6), **revived)
    await Prompt.filter(id=later.id).update(deliver_at=at + timedelta(days=1), **revived)
    created = await late_prompt(alice, now, "date:2099-01-01")
    missed = await late_prompt(alice, now, "date:2099-01-02", status=PromptStatus.EXPIRED, expired_at=at)

    released = await outbox.release_due(CONFIG.delivery, now=at)
    reminded = await outbox.queue_reminders(CONFIG.delivery, now=at + timedelta(hours=2))

    # The dispatcher releases the due one to no one: her devices are gone and her notifications off.
    assert (released.released, reminded.reminders) == (1, 0)
    assert (await Prompt.get(id=due.id)).status is PromptStatus.SENT
    assert not await PushMessage.filter(prompt__patient_id=alice.id).exists()

    assert await purge_erased(CONFIG, at + timedelta(hours=2)) == counts(cancelled=4)

    for prompt in await Prompt.filter(id__in=[due.id, later.id, created.id, missed.id]):
        assert prompt.status is PromptStatus.CANCELLED
        assert (prompt.cancelled_at, prompt.next_reminder_at) == (at + timedelta(hours=2), None)
    # Sent before the erasure, or cancelled by it: the record as the erasure left it. Bob's prompts untouched.
    assert await Prompt.filter(id__in=[sent.id, *untouched]).order_by("id").values() == before
    assert await Prompt.filter(patient_id=w.bob.patient.id).order_by("id").values() == bob_before
    assert await purge_erased(CONFIG, at + timedelta(hours=3)) == counts()


async def test_prompts_planned_after_a_purge_are_deleted(factory: Factory, services: Services, now: datetime) -> None:
    clinic = await factory.clinic()
    admin = await factory.staff(clinic, Role.ADMIN)
    carol, dan = await factory.patient(clinic, joined=now), await factory.patient(clinic, joined=now)
    eraser = erasure_service(services, timedelta(0))
    await eraser.erase_patient(admin.actor, carol.patient.id, "by letter", password=PASSWORD, now=now)
    assert not await Prompt.filter(patient_id=carol.patient.id).exists()
    dans = await Prompt.filter(patient_id=dan.patient.id).count()
    await late_prompt(carol.patient, now, "date:2099-01-01")
    await late_prompt(carol.patient, now, "date:2099-01-02", status=PromptStatus.SENT, sent_at=now)
    await late_prompt(carol.patient, now, "date:2099-01-03", status=PromptStatus.CANCELLED, cancelled_at=now)

    assert await purge_erased(CONFIG, now + timedelta(hours=1)) == counts(deleted=3)

    assert not await Prompt.filter(patient_id=carol.patient.id).exists()
    assert await Prompt.filter(patient_id=dan.patient.id).count() == dans
    assert (await Patient.get(id=carol.patient.id)).erased_at == now


async def test_two_replicas_at_once_cancel_each_late_prompt_once(
    factory: Factory, services: Services, now: datetime
) -> None:
    _, ids = await held_patients(factory, services, 5, now)
    for patient in await Patient.filter(id__in=ids):
        await late_prompt(patient, now, "date:2099-01-01")

    done = await asyncio.gather(purge_late_prompts(now=now, batch=2), purge_late_prompts(now=now, batch=2))

    assert sum(cancelled for cancelled, _ in done) == 5
    assert {p.status for p in await Prompt.all()} == {PromptStatus.CANCELLED}
