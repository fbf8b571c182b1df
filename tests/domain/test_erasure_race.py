"""A patient's write racing the erasure of their account: never a record (or an alert) the erasure did not see.

Every write that adds to the record or may raise an alert (diary log, sync, update, delete, questionnaire submit),
and every write the erasure undoes (a session scheduled or moved, an enrolment, a push token, the preferences), locks
the patient's row in its transaction and checks the patient again there (a diary log checks them there only); the
erasure takes the same lock first. So
a write that passed its first check just before the erasure committed is refused (NOT_FOUND, as any call of an erased
patient is; CONFLICT for staff); a write that comes while the erasure runs waits for it, then is refused; an erasure
that comes while a write runs waits for it, then holds or purges what was written with the rest. The replan that
follows a committed write plans nothing for a patient erased meanwhile.

The races are made deterministic with gates: a subclass pauses a service at a known point until the test opens it.
No sleep decides anything: a wait for a lock is observed (PostgreSQL's pg_stat_activity), or, on SQLite, where a
transaction holds the process's one connection and every other statement waits for it, the waiting task is shown
not to have finished.

Alice has one diary entry and no alert; the erasures are made without a hold, so that the record goes at once, as in
the reviewer's report (a diary entry and an open critical alert left behind a purge that had already happened). The
staff and contact writes are raced against both a held and a purged record: a held one shows any change at all.

Last, the staff's list of erased patients follows the alert list's rule: a patient whose critical alert is listed is
listed too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID, uuid4

import pytest
import pytest_asyncio
from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient

from api.domain.actor import Actor, Role
from api.domain.alert.models import Alert, AlertStatus, Severity
from api.domain.alert.service import AlertFilter, AlertService, Announced
from api.domain.diary.models import DiaryEntry
from api.domain.diary.service import DiaryService
from api.domain.diary.validation import DiaryInput, SideEffectReport
from api.domain.diary.vocabulary import SideEffect
from api.domain.errors import Conflict, DomainError, NotFound
from api.domain.patient.access import reachable_patient, require_patient
from api.domain.patient.erasure import Erasure, ErasureService
from api.domain.patient.models import Patient, PatientStatus
from api.domain.prompt import scheduling
from api.domain.prompt.models import PromptPlan
from api.domain.prompt.service import PreferenceChange, PromptService
from api.domain.push import devices
from api.domain.push.models import Device, ProviderName
from api.domain.questionnaire.models import QuestionnaireResponse
from api.domain.questionnaire.service import QuestionnaireInput, QuestionnaireService
from api.domain.services import Services
from api.domain.treatment.models import InfusionSession
from api.domain.treatment.service import SessionChange, TreatmentService
from tests.conftest import Database
from tests.erasure_support import table_dump
from tests.factories import PASSWORD, Factory, PatientUser, Staff

NO_HOLD = timedelta(0)
REASON = "asked by letter"
# Bounds on every wait: a race that does not happen as staged fails the test instead of hanging it.
TIMEOUT = 5.0
POLLS = 500


class Gate:
    """Where a paused service waits: `reached` once it gets there, then it goes on when the test opens the gate."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def wait_here(self) -> None:
        self.reached.set()
        await asyncio.wait_for(self.opened.wait(), TIMEOUT)

    async def until_reached(self) -> None:
        await asyncio.wait_for(self.reached.wait(), TIMEOUT)


@dataclass
class Alice:
    who: PatientUser
    admin: Staff
    entry: DiaryEntry

    @property
    def id(self) -> UUID:
        return self.who.patient.id


@pytest_asyncio.fixture
async def alice(factory: Factory, now: datetime) -> Alice:
    clinic = await factory.clinic()
    admin = await factory.staff(clinic, Role.ADMIN)
    who = await factory.patient(clinic)
    entry = await factory.entry(who, recorded_at=now - timedelta(days=1), pain_now=4)
    return Alice(who, admin, entry)


# The writes, each as Alice sends it; every one would raise a CRITICAL alert if it were let through (a red-flag
# symptom, or thoughts of self-harm) but delete, which would still change the record.
Write = Callable[[DiaryService, QuestionnaireService, Alice, datetime], Coroutine[Any, Any, object]]


def red_flag(now: datetime) -> DiaryInput:
    chest = [SideEffectReport(SideEffect.CHEST_PAIN, 3)]
    return DiaryInput(client_id=uuid4(), recorded_at=now - timedelta(hours=1), side_effects=chest)


async def log(diary: DiaryService, _: QuestionnaireService, alice: Alice, now: datetime) -> object:
    return await diary.log(alice.who.actor, red_flag(now), now=now)


async def sync(diary: DiaryService, _: QuestionnaireService, alice: Alice, now: datetime) -> object:
    return await diary.sync(alice.who.actor, [red_flag(now), red_flag(now)], now=now)


async def update(diary: DiaryService, _: QuestionnaireService, alice: Alice, now: datetime) -> object:
    patch = {"side_effects": [SideEffectReport(SideEffect.CHEST_PAIN, 3)]}
    return await diary.update(alice.who.actor, alice.entry.id, patch, expected_version=None, now=now)


async def delete(diary: DiaryService, _: QuestionnaireService, alice: Alice, now: datetime) -> object:
    return await diary.delete(alice.who.actor, alice.entry.id, now=now)


async def submit(_: DiaryService, questionnaires: QuestionnaireService, alice: Alice, now: datetime) -> object:
    answers = [*((f"phq9_{i}", 1) for i in range(1, 9)), ("phq9_9", 2)]
    return await questionnaires.submit(alice.who.actor, QuestionnaireInput(uuid4(), "phq9", answers), now=now)


WRITES: dict[str, Write] = {"log": log, "sync": sync, "update": update, "delete": delete, "submit": submit}


async def record_of(patient_id: UUID) -> dict[str, int]:
    return {
        "entries": await DiaryEntry.filter(patient_id=patient_id).count(),
        "responses": await QuestionnaireResponse.filter(patient_id=patient_id).count(),
        "alerts": await Alert.filter(patient_id=patient_id).count(),
    }


NOTHING_LEFT = {"entries": 0, "responses": 0, "alerts": 0}


async def assert_erased_and_purged(alice: Alice, now: datetime) -> None:
    patient = await Patient.get(id=alice.id)
    assert (patient.status, patient.erased_at) == (PatientStatus.ERASED, now)
    assert await record_of(alice.id) == NOTHING_LEFT


async def waiting(db: Database, task: asyncio.Task[Any]) -> None:
    """Returns once `task` waits for the transaction the test holds open, failing if it finished instead."""
    if db.backend == "sqlite":
        # The open transaction holds the process's one connection: every statement of the task waits for it (and
        # the test must not query either). A few turns of the loop take the task to its first statement.
        for _ in range(20):
            await asyncio.sleep(0)
        assert not task.done(), task
        return
    for _ in range(POLLS):
        assert not task.done(), task
        rows = await Tortoise.get_connection("default").execute_query_dict(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if rows[0]["n"]:
            return
        # Polls PostgreSQL's view of who waits for a lock, at most POLLS times: it decides nothing.
        await asyncio.sleep(0.01)
    raise AssertionError("the task never waited for the lock")


# --- The reviewer's race: the erasure commits between the write's first check and its transaction ---------------


class ErasingDiary(DiaryService):
    """Runs `erase` to its commit right after the write's first check, before its transaction."""

    erase: Callable[[], Awaitable[object]]

    async def _writer(self, actor: Actor) -> Patient:
        patient = await super()._writer(actor)
        await self.erase()
        return patient


class ErasingQuestionnaires(QuestionnaireService):
    erase: Callable[[], Awaitable[object]]

    async def _writer(self, actor: Actor) -> Patient:
        patient = await super()._writer(actor)
        await self.erase()
        return patient


# `log` checks the patient only under the lock, in its transaction (`DiaryService.log`): it has no first check for an
# erasure to commit after. What it can meet, an erasure running when it comes, is the next test's.
CHECKED_FIRST = [name for name in WRITES if name != "log"]


@pytest.mark.parametrize("write", CHECKED_FIRST)
async def test_a_write_whose_check_passed_before_the_erasure_committed_is_refused(
    services: Services, alice: Alice, now: datetime, write: str
) -> None:
    async def erase() -> Erasure:
        eraser = ErasureService(accounts=services.accounts, retention=NO_HOLD)
        return await eraser.erase_patient(alice.admin.actor, alice.id, REASON, password=PASSWORD, now=now)

    diary = ErasingDiary(services.diary.policy, services.diary.prompts, services.diary.alerts)
    questionnaires = ErasingQuestionnaires(
        services.questionnaires.prompts, services.questionnaires.alerts, services.questionnaires.registry
    )
    diary.erase = questionnaires.erase = erase

    with pytest.raises(NotFound) as refused:
        await WRITES[write](diary, questionnaires, alice, now)

    assert refused.value.message == "patient not found"
    await assert_erased_and_purged(alice, now)


# --- The erasure first: a write that comes while it runs waits for it, then is refused ------------------------------


class PausedErasure(ErasureService):
    """Waits at `gate` inside its transaction, having locked the patient and cut the account and contact off."""

    gate: Gate

    async def _hold_or_purge(self, patient: Patient, now: datetime, conn: BaseDBAsyncClient) -> None:
        await self.gate.wait_here()
        await super()._hold_or_purge(patient, now, conn)


@pytest.mark.parametrize("write", list(WRITES))
async def test_a_write_during_an_erasure_waits_for_it_then_is_refused(
    db: Database, services: Services, alice: Alice, now: datetime, write: str
) -> None:
    eraser = PausedErasure(accounts=services.accounts, retention=NO_HOLD)
    eraser.gate = Gate()
    erasing = asyncio.create_task(eraser.erase_patient(alice.admin.actor, alice.id, REASON, password=PASSWORD, now=now))
    await eraser.gate.until_reached()

    writing = asyncio.create_task(WRITES[write](services.diary, services.questionnaires, alice, now))
    await waiting(db, writing)
    eraser.gate.opened.set()

    erasure = await asyncio.wait_for(erasing, TIMEOUT)
    with pytest.raises(NotFound):
        await asyncio.wait_for(writing, TIMEOUT)
    assert erasure.erased_at == now
    await assert_erased_and_purged(alice, now)


# --- The write first: an erasure that comes while it runs waits for it, then holds what it wrote -------------------


class PausedAlerts(AlertService):
    """Waits at `gate` inside the write's transaction, the record stored and its alerts raised."""

    gate: Gate

    async def on_entry(
        self,
        patient: Patient,
        entry: DiaryEntry,
        *,
        now: datetime,
        using_db: BaseDBAsyncClient,
        changed: Collection[str] | None = None,
    ) -> Announced:
        raised = await super().on_entry(patient, entry, now=now, using_db=using_db, changed=changed)
        await self.gate.wait_here()
        return raised

    async def on_response(
        self, patient: Patient, response: QuestionnaireResponse, *, now: datetime, using_db: BaseDBAsyncClient
    ) -> Announced:
        raised = await super().on_response(patient, response, now=now, using_db=using_db)
        await self.gate.wait_here()
        return raised


@pytest.mark.parametrize("write", ["log", "submit"])
async def test_an_erasure_during_a_write_waits_for_it_then_holds_what_it_wrote(
    db: Database, services: Services, alice: Alice, now: datetime, write: str
) -> None:
    alerts = PausedAlerts(services.alerts.policy, services.alerts.broker)
    alerts.gate = Gate()
    diary = DiaryService(services.diary.policy, services.diary.prompts, alerts)
    questionnaires = QuestionnaireService(services.questionnaires.prompts, alerts, services.questionnaires.registry)
    writing = asyncio.create_task(WRITES[write](diary, questionnaires, alice, now))
    await alerts.gate.until_reached()

    eraser = ErasureService(accounts=services.accounts, retention=NO_HOLD)
    erasing = asyncio.create_task(eraser.erase_patient(alice.admin.actor, alice.id, REASON, password=PASSWORD, now=now))
    await waiting(db, erasing)
    alerts.gate.opened.set()

    await asyncio.wait_for(writing, TIMEOUT)
    erasure = await asyncio.wait_for(erasing, TIMEOUT)
    # The write raised a critical alert: the record is held until it is resolved, and the alert is in the list.
    assert (erasure.retained_until, erasure.erased_at) == (now, None)
    [critical] = await Alert.filter(patient_id=alice.id, severity=Severity.CRITICAL, status=AlertStatus.OPEN)
    page = await services.alerts.search(alice.admin.actor, AlertFilter(), first=None, after=None, now=now)
    assert critical.id in [a.id for a in page.items]


# --- Staff and contact writes: sessions, enrolment, devices, preferences ----------------------------------------------
# The same two races for the writes that add to the record (a session), change how the patient is planned or reached
# (enrolment, preferences) or give the patient a way to be reached again (a push token). Staff are refused with
# CONFLICT (a held record is read-only), the patient with NOT_FOUND (they reach nothing once erased).

HOLD = timedelta(days=365)
NEW_TOKEN = "a-new-phone-token"


@dataclass
class Booked:
    """Alice with a session booked in three days, and a second current plan of her clinic to enrol her in."""

    alice: Alice
    session: InfusionSession
    plan: PromptPlan


@pytest_asyncio.fixture
async def booked(services: Services, alice: Alice, now: datetime) -> Booked:
    session = await services.treatment.schedule(
        alice.admin.actor,
        alice.id,
        starts_at=now + timedelta(days=3),
        planned_duration_minutes=60,
        course_id=None,
        now=now,
    )
    plan = await PromptPlan.create(
        clinic_id=alice.who.patient.clinic_id,
        family_id=uuid4(),
        name="Weekly only",
        version=1,
        rules=[],
        is_current=True,
        created_at=now,
    )
    return Booked(alice, session, plan)


class Register(Protocol):
    async def __call__(
        self, actor: Actor, provider: ProviderName, token: str, platform: str | None, *, now: datetime
    ) -> Device: ...


@dataclass
class Writers:
    treatment: TreatmentService
    prompts: PromptService
    register: Register


StaffWrite = Callable[[Writers, Booked, datetime], Coroutine[Any, Any, object]]


async def schedule(writers: Writers, booked: Booked, now: datetime) -> object:
    a = booked.alice
    starts = now + timedelta(days=4)
    return await writers.treatment.schedule(
        a.admin.actor, a.id, starts_at=starts, planned_duration_minutes=60, course_id=None, now=now
    )


async def reschedule(writers: Writers, booked: Booked, now: datetime) -> object:
    change = SessionChange(starts_at=now + timedelta(days=5))
    return await writers.treatment.update(booked.alice.admin.actor, booked.session.id, change, now=now)


async def enroll(writers: Writers, booked: Booked, now: datetime) -> object:
    return await writers.prompts.enroll(booked.alice.admin.actor, booked.alice.id, booked.plan.id, now=now)


async def register(writers: Writers, booked: Booked, now: datetime) -> object:
    return await writers.register(booked.alice.who.actor, ProviderName.FCM, NEW_TOKEN, "android", now=now)


async def preferences(writers: Writers, booked: Booked, now: datetime) -> object:
    change = PreferenceChange(timezone="Europe/Paris", notifications_enabled=True)
    return await writers.prompts.update_preferences(booked.alice.who.actor, change, now=now)


# Each write, and how it is refused once the patient is erased.
STAFF_WRITES: dict[str, tuple[StaffWrite, type[DomainError]]] = {
    "schedule": (schedule, Conflict),
    "reschedule": (reschedule, Conflict),
    "enroll": (enroll, Conflict),
    "register": (register, NotFound),
    "preferences": (preferences, NotFound),
}


def writers_of(services: Services) -> Writers:
    return Writers(services.treatment, services.prompts, devices.register)


class ErasingTreatment(TreatmentService):
    erase: Callable[[], Awaitable[object]]

    async def _patient(self, actor: Actor, patient_id: UUID) -> Patient:
        patient = await super()._patient(actor, patient_id)
        await self.erase()
        return patient


class ErasingPrompts(PromptService):
    erase: Callable[[], Awaitable[object]]

    async def _patient(self, actor: Actor, patient_id: UUID) -> Patient:
        patient = await super()._patient(actor, patient_id)
        await self.erase()
        return patient


def erasing_register(erase: Callable[[], Awaitable[object]]) -> Register:
    """`devices.register`, module functions with no seam to pause at: its check, the erasure, then its write."""

    async def register(
        actor: Actor, provider: ProviderName, token: str, platform: str | None, *, now: datetime
    ) -> Device:
        patient = await reachable_patient(actor, require_patient(actor))
        await erase()
        return await devices._register(patient, provider, token, platform, now)

    return register


@pytest.mark.parametrize("retention", [HOLD, NO_HOLD], ids=["held", "purged"])
@pytest.mark.parametrize("write", list(STAFF_WRITES))
async def test_a_staff_or_contact_write_whose_check_passed_before_the_erasure_committed_is_refused(
    services: Services, booked: Booked, now: datetime, write: str, retention: timedelta
) -> None:
    as_erased: dict[str, list[dict[str, Any]]] = {}

    async def erase() -> None:
        eraser = ErasureService(accounts=services.accounts, retention=retention)
        await eraser.erase_patient(booked.alice.admin.actor, booked.alice.id, REASON, password=PASSWORD, now=now)
        as_erased.update(await table_dump())

    treatment = ErasingTreatment(services.treatment.scheduling)
    prompts = ErasingPrompts(services.prompts.scheduling)
    treatment.erase = prompts.erase = erase
    call, refusal = STAFF_WRITES[write]

    with pytest.raises(refusal):
        await call(Writers(treatment, prompts, erasing_register(erase)), booked, now)

    # Not a row changed since the erasure: no session, course or device behind the purge or added to the held
    # record, the plan and the reset preferences as the erasure left them.
    assert as_erased
    assert await table_dump() == as_erased


@pytest.mark.parametrize("write", list(STAFF_WRITES))
async def test_a_staff_or_contact_write_during_an_erasure_waits_for_it_then_is_refused(
    db: Database, services: Services, booked: Booked, now: datetime, write: str
) -> None:
    a = booked.alice
    eraser = PausedErasure(accounts=services.accounts, retention=HOLD)
    eraser.gate = Gate()
    erasing = asyncio.create_task(eraser.erase_patient(a.admin.actor, a.id, REASON, password=PASSWORD, now=now))
    await eraser.gate.until_reached()

    call, refusal = STAFF_WRITES[write]
    writing = asyncio.create_task(call(writers_of(services), booked, now))
    await waiting(db, writing)
    eraser.gate.opened.set()

    erasure = await asyncio.wait_for(erasing, TIMEOUT)
    with pytest.raises(refusal):
        await asyncio.wait_for(writing, TIMEOUT)
    assert erasure.retained_until is not None
    patient = await Patient.get(id=a.id)
    # The preferences as the erasure reset them (the time zone is kept while the record is held), the plan as it was.
    assert (patient.timezone, patient.notifications_enabled) == (a.who.patient.timezone, False)
    assert patient.plan_family_id == a.who.patient.plan_family_id
    assert await Device.filter(patient_id=a.id).count() == 0
    [session] = await InfusionSession.filter(patient_id=a.id)
    assert (session.id, session.starts_at) == (booked.session.id, booked.session.starts_at)


# --- The replan after a write's commit --------------------------------------------------------------------------------
# Scheduling a session (or enrolling, or new preferences) replans the patient after the write's transaction has
# committed, with the patient it read: an erasure may commit while the planner decides. The planner reads the statuses
# again before it writes, and writes nothing for a patient erased meanwhile (what the instant of its writes may still
# leave, the purge pass sweeps up: tests/jobs/test_erasure_purge.py).


@pytest.mark.parametrize("retention", [HOLD, NO_HOLD], ids=["held", "purged"])
async def test_a_replan_that_read_the_patient_before_the_erasure_committed_plans_nothing_after_it(
    services: Services, booked: Booked, now: datetime, retention: timedelta
) -> None:
    a = booked.alice
    # A second session, committed by `schedule`'s transaction: its prompts are owed, not yet planned.
    await InfusionSession.create(
        clinic_id=a.who.patient.clinic_id, patient_id=a.id, course_id=booked.session.course_id,
        starts_at=now + timedelta(days=4), planned_duration_minutes=60, created_at=now, updated_at=now,
    )  # fmt: skip
    decided = await scheduling.load_state([await Patient.get(id=a.id)], services.treatment.scheduling, now=now)
    assert decided.wanted[a.id]
    eraser = ErasureService(accounts=services.accounts, retention=retention)
    await eraser.erase_patient(a.admin.actor, a.id, REASON, password=PASSWORD, now=now)
    as_erased = await table_dump()

    report = await scheduling.write_plan(decided, now=now)

    assert (report.created, report.moved, report.revived) == (0, 0, 0)
    assert await table_dump() == as_erased


# --- The erased patients staff list: the alert list's rule ------------------------------------------------------------


async def test_a_patient_left_with_a_critical_alert_after_the_purge_is_listed_with_the_erased_until_it_is_resolved(
    services: Services, alice: Alice, now: datetime
) -> None:
    """A write that escaped the erasure (every write now takes its lock, so one is staged by lifting the erased
    status for it) left an open critical alert behind the purge: staff see the alert in the list, so they find its
    patient among the erased, as they find a held one."""
    admin = alice.admin.actor
    eraser = ErasureService(accounts=services.accounts, retention=NO_HOLD)
    await eraser.erase_patient(admin, alice.id, REASON, password=PASSWORD, now=now)
    await assert_erased_and_purged(alice, now)
    await Patient.filter(id=alice.id).update(status=PatientStatus.ACTIVE)
    await services.diary.log(alice.who.actor, red_flag(now), now=now)
    await Patient.filter(id=alice.id).update(status=PatientStatus.ERASED)
    later = now + timedelta(hours=1)

    async def erased_listed() -> list[UUID]:
        page = await services.patients.search(
            admin, first=None, after=None, search=None, status=PatientStatus.ERASED, now=later
        )
        return [p.id for p in page.items]

    [critical] = await Alert.filter(patient_id=alice.id, severity=Severity.CRITICAL)
    alerts = await services.alerts.search(admin, AlertFilter(), first=None, after=None, now=later)
    assert [a.id for a in alerts.items] == [critical.id]
    assert await erased_listed() == [alice.id]

    await services.alerts.resolve(admin, critical.id, "reached her GP", now=later)

    # Resolved, the alert is out of the list (the next purge takes it) and its patient out of reach again.
    assert (await services.alerts.search(admin, AlertFilter(), first=None, after=None, now=later)).items == []
    assert await erased_listed() == []
