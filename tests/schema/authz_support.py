"""Shared by the access tests (no tests here): the world of two clinics, and the authorization matrix.

`build_world` seats the people every access test needs: Alice and Bob, patients of the home clinic, its clinician
and admin, and a clinician and an admin of another clinic.

`TABLE` is the authorization matrix: one row per operation of the schema (a root field may have several rows, one
per way in, e.g. each field of `patient(id:)`), each with a minimal document, the variables it is called with and
what each of six callers gets: ALLOW or the error code. Object-scoped rows name Alice's record (or an object of
hers, made fresh for every call when the operation changes it), so that Bob and the other clinic's clinician meet a
record they may not see, which answers NOT_FOUND exactly as a missing one. Rows that staff may call also say what
the audit trail must show for it (`Audit`): test_audit_completeness holds every staff call to that.

To add an operation: write its document, pick its cells (one of the patterns below, or your own), give it a
`prepare` if it takes variables, and an `Audit` if staff may call it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any
from uuid import UUID, uuid4

from graphql import FieldNode, OperationDefinitionNode, parse
from strawberry.types import ExecutionResult
from tortoise.contrib.test import truncate_all_models

from api.domain.account import totp
from api.domain.account.models import Clinic
from api.domain.actor import Actor, RequestMeta, Role
from api.domain.alert.broker import AlertNotice, NoticeKind
from api.domain.alert.models import Alert, Severity
from api.domain.diary.models import DiaryEntry
from api.domain.prompt import plans
from api.domain.push import devices
from api.domain.push.models import ProviderName
from api.domain.services import Services
from schema.context import Context
from tests.conftest import NOW
from tests.factories import PASSWORD, Factory, PatientUser, Staff
from tests.graphql import SCHEMA, GraphQLClient, Result
from tests.schema.questionnaire_support import open_prompt, phq9

# --- who calls ----------------------------------------------------------------------------------------------------

ANONYMOUS = "anonymous"
PATIENT_A = "patient-a"
PATIENT_B = "patient-b"  # same clinic as A
CLINICIAN_1 = "clinician-1"  # A's clinic
CLINICIAN_2 = "clinician-2"  # another clinic
ADMIN_1 = "admin-1"  # A's clinic
SEATS = (ANONYMOUS, PATIENT_A, PATIENT_B, CLINICIAN_1, CLINICIAN_2, ADMIN_1)
STAFF_SEATS = (CLINICIAN_1, ADMIN_1)
# Not entitled to anything of Alice's: nothing of hers may reach them, in data or in errors.
OUTSIDERS = (ANONYMOUS, PATIENT_B, CLINICIAN_2)

ALLOW = "ALLOW"
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
OUTCOMES = (ALLOW, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND)


@dataclass
class World:
    home: Clinic
    away: Clinic
    clinician: Staff
    admin: Staff
    alice: PatientUser
    bob: PatientUser
    foreign_clinician: Staff
    foreign_admin: Staff


async def build_world(factory: Factory) -> World:
    """Two clinics and their people, nothing recorded yet. Alice registered 120 days ago (room for a course)."""
    home, away = await factory.clinic("Home"), await factory.clinic("Away")
    return World(
        home=home,
        away=away,
        clinician=await factory.staff(home),
        admin=await factory.staff(home, Role.ADMIN),
        alice=await factory.patient(home, name="Alice", joined=factory.now - timedelta(days=120)),
        bob=await factory.patient(home, name="Bob"),
        foreign_clinician=await factory.staff(away),
        foreign_admin=await factory.staff(away, Role.ADMIN),
    )


@dataclass
class Stage:
    """The world the matrix runs in, shared by a module's cells: nothing a cell changes is read by another."""

    services: Services
    factory: Factory
    gql: GraphQLClient
    world: World
    dave: PatientUser  # the other clinic's patient
    dave_alert: Alert
    alice_alert: Alert
    alice_entry: DiaryEntry
    plans: dict[UUID, UUID]  # clinic id → its default plan
    signer: Staff  # the account the public rows sign in as: not Alice's

    @property
    def alice_id(self) -> str:
        return str(self.world.alice.patient.id)

    def actor(self, seat: str) -> Actor | None:
        w = self.world
        return {
            ANONYMOUS: None,
            PATIENT_A: w.alice.actor,
            PATIENT_B: w.bob.actor,
            CLINICIAN_1: w.clinician.actor,
            CLINICIAN_2: w.foreign_clinician.actor,
            ADMIN_1: w.admin.actor,
        }[seat]

    def clinic_of(self, seat: str) -> UUID:
        actor = self.actor(seat)
        return actor.clinic_id if actor is not None else self.world.home.id

    def markers(self) -> frozenset[str]:
        """What is Alice's: none of it may reach an outsider."""
        alice = self.world.alice
        return frozenset(
            {
                str(alice.patient.id),
                str(alice.account.id),
                alice.email,
                alice.patient.display_name,
                str(self.alice_entry.id),
                str(self.alice_alert.id),
            }
        )

    async def run(
        self, row: Row, seat: str, *, request_id: str, variables: dict[str, Any] | None = None
    ) -> tuple[Call, Result]:
        """One cell: the row's fresh objects, then its document as the seat's caller."""
        call = await row.prepare(self, seat)
        if row.kind == "subscription":
            return call, await self.first_delivery(row, seat, request_id=request_id)
        sent = call.variables if variables is None else variables
        actor = call.caller or self.actor(seat)
        return call, await self.gql(row.document, sent, actor=actor, request_id=request_id)

    async def first_delivery(self, row: Row, seat: str, *, request_id: str) -> Result:
        """A subscription's first result. When the subscription is accepted, Alice's alert is announced to her
        clinic; a caller of another clinic is then sent a notice naming it in their own clinic, then one of their
        own clinic's alerts: what they receive first shows whether anything of Alice's got through."""
        meta = RequestMeta(request_id=request_id, ip="198.51.100.1")
        actor = self.actor(seat)
        if actor is not None:
            actor = Actor(actor.account_id, actor.role, actor.clinic_id, actor.patient_id, meta=meta)
        context = Context(services=self.services, now=NOW, actor=actor, meta=meta)
        stream = await SCHEMA.subscribe(row.document, context_value=context)
        assert isinstance(stream, AsyncGenerator), stream
        broker = self.services.alerts.broker
        clinic = self.clinic_of(seat)
        first: asyncio.Task[ExecutionResult] = asyncio.ensure_future(_next(stream))
        try:
            async with asyncio.timeout(WAIT):
                listening = asyncio.ensure_future(broker.wait_subscribers(clinic, 1))
                await asyncio.wait({first, listening}, return_when=asyncio.FIRST_COMPLETED)
                listening.cancel()
                if not first.done():
                    for kind in (NoticeKind.RAISED, NoticeKind.ESCALATED):
                        await broker.publish(AlertNotice(self.alice_alert.id, self.world.home.id, kind))
                    if clinic != self.world.home.id:
                        for kind in (NoticeKind.RAISED, NoticeKind.ESCALATED):
                            await broker.publish(AlertNotice(self.alice_alert.id, clinic, kind))
                            await broker.publish(AlertNotice(self.dave_alert.id, clinic, kind))
                result = await first
        finally:
            # The pending read is ended before the stream: a generator cannot be closed while it runs.
            first.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await first
            await stream.aclose()
        return Result(data=result.data, errors=[dict(e.formatted) for e in result.errors or []])


# A subscription's notice arrives in milliseconds; reaching this is a failure, never a wait.
WAIT = 10


async def _next(stream: AsyncGenerator[ExecutionResult, None]) -> ExecutionResult:
    return await anext(stream)


@asynccontextmanager
async def staged(services: Services) -> AsyncIterator[Stage]:
    """A module's stage on the session's database, emptied when the module is done (the per-test `db` fixture
    empties it after each test: a module that shares a stage must not use `db`, `gql`, `factory` or `http`)."""
    factory = Factory(services, NOW)
    try:
        yield await _build_stage(services, factory)
    finally:
        await truncate_all_models()


async def _build_stage(services: Services, factory: Factory) -> Stage:
    world = await build_world(factory)
    dave = await factory.patient(world.away, name="Dave")
    alice = world.alice
    await _alert(world.bob)  # the clinic's alert list spans two patients
    return Stage(
        services=services,
        factory=factory,
        gql=GraphQLClient(services, NOW),
        world=world,
        dave=dave,
        dave_alert=await _alert(dave),
        alice_alert=await _alert(alice),
        alice_entry=await factory.entry(alice, recorded_at=NOW - timedelta(hours=2), pain_now=4),
        plans={c.id: (await plans.default_plan(c.id, now=NOW)).id for c in (world.home, world.away)},
        signer=await factory.staff(world.home),
    )


async def _alert(who: PatientUser) -> Alert:
    return await Alert.create(
        clinic_id=who.patient.clinic_id,
        patient_id=who.patient.id,
        rule_id="persistent_dissociation",
        rule_version=1,
        severity=Severity.HIGH,
        episode="patient",
        open_key=f"matrix:{uuid4()}",
        raised_at=NOW - timedelta(hours=1),
        updated_at=NOW - timedelta(hours=1),
    )


def leaks(result: Result, markers: Iterable[str]) -> list[str]:
    text = json.dumps({"data": result.data, "errors": result.errors}, default=str)
    return sorted(m for m in markers if m in text)


# --- a row ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    variables: dict[str, Any] | None = None
    # The same call naming an object that does not exist: a hidden object must answer exactly like it.
    missing: dict[str, Any] | None = None
    # Ids of Alice's objects made for this call.
    markers: frozenset[str] = frozenset()
    # Calls in the seat's place, for an operation that would spoil the stage for everyone after it (an erasure
    # erases its caller): a stand-in of the same role and clinic, made for this call.
    caller: Actor | None = None


Prepare = Callable[[Stage, str], Awaitable[Call]]

TARGET = "patient-a"  # the event names Alice
OWN = "own"  # the event names the calling patient
LISTED = "listed"  # one event covering every patient shown (Alice and Bob), naming none
CLINIC = "clinic"  # about the clinic: no patient
RETURNED = "returned"  # the patient the operation returns (at `Audit.returned`)


@dataclass(frozen=True)
class Audit:
    """What one call leaves in the audit trail: exactly one event with this action naming `subject` (None: no
    event at all)."""

    action: str | None
    subject: str = TARGET
    returned: tuple[str, ...] = ()


NO_AUDIT = Audit(None)


async def _nothing(stage: Stage, seat: str) -> Call:
    return Call()


@dataclass(frozen=True)
class Row:
    name: str
    document: str
    cells: Mapping[str, str]
    prepare: Prepare = _nothing
    # Required where staff may call it: staff reads and writes of patient data are audited, and a row that
    # leaves this out fails test_audit_completeness rather than passing unaudited.
    audit: Audit | None = None
    # What a patient's own successful call leaves: nothing (reads of one's own data are not audited), or this.
    own_audit: Audit | None = None
    note: str = ""

    @property
    def kind(self) -> str:
        return _root(self.document)[0]

    @property
    def field(self) -> str:
        return _root(self.document)[1]

    @property
    def operation_name(self) -> str:
        return _root(self.document)[2]

    @property
    def staff_may_call(self) -> bool:
        return any(self.cells.get(s) == ALLOW for s in STAFF_SEATS)


@cache
def _root(document: str) -> tuple[str, str, str]:
    """(operation type, its first root field, the operation's name)."""
    operation = next(d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode))
    first = next(s for s in operation.selection_set.selections if isinstance(s, FieldNode))
    name = operation.name.value if operation.name else first.name.value
    return operation.operation.value, first.name.value, name


def cells(*outcomes: str) -> dict[str, str]:
    """One outcome per seat, in the order of SEATS: anonymous, patient A, patient B, clinician of A's clinic,
    clinician of another clinic, admin of A's clinic."""
    return dict(zip(SEATS, outcomes, strict=True))


# Patterns. "Own": the caller's own record, named by the token. "Object": Alice's, named by an id.
PUBLIC = cells(ALLOW, ALLOW, ALLOW, ALLOW, ALLOW, ALLOW)
SIGNED_IN = cells(UNAUTHENTICATED, ALLOW, ALLOW, ALLOW, ALLOW, ALLOW)
PATIENT_OWN = cells(UNAUTHENTICATED, ALLOW, ALLOW, FORBIDDEN, FORBIDDEN, FORBIDDEN)
PATIENT_OBJECT = cells(UNAUTHENTICATED, ALLOW, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN)
RECORD = cells(UNAUTHENTICATED, ALLOW, NOT_FOUND, ALLOW, NOT_FOUND, ALLOW)
STAFF_RECORD = cells(UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, ALLOW, NOT_FOUND, ALLOW)
STAFF = cells(UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, ALLOW, ALLOW, ALLOW)  # each clinic's own
STAFF_OBJECT = cells(UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, ALLOW, NOT_FOUND, ALLOW)
ADMIN = cells(UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, ALLOW)


# --- fresh variables and objects ------------------------------------------------------------------------------


def _random() -> str:
    return str(uuid4())


async def _alice(stage: Stage, seat: str) -> Call:
    return Call({"id": stage.alice_id}, missing={"id": _random()})


async def _alice_filter(stage: Stage, seat: str) -> Call:
    return Call({"patientId": stage.alice_id}, missing={"patientId": _random()})


async def _sign_in(stage: Stage, seat: str) -> Call:
    return Call({"email": stage.signer.email, "password": PASSWORD})


async def _fresh_session(stage: Stage, seat: str) -> Call:
    session = await stage.services.accounts.login(stage.signer.email, PASSWORD, ip=None, now=NOW)
    return Call({"token": session.refresh_token})


async def _fresh_invite(stage: Stage, seat: str) -> Call:
    email = f"newcomer-{uuid4().hex[:12]}@example.test"
    issued = await stage.services.patients.invite(
        stage.world.clinician.actor, display_name="Newcomer", email=email, timezone="Europe/Berlin", now=NOW
    )
    return Call({"input": {"inviteCode": issued.code, "email": email, "password": PASSWORD}})


def _entry_input() -> dict[str, Any]:
    return {"clientId": _random(), "recordedAt": (NOW - timedelta(hours=1)).isoformat(), "painNow": 3}


async def _new_entry(stage: Stage, seat: str) -> Call:
    return Call({"input": _entry_input()})


async def _new_entries(stage: Stage, seat: str) -> Call:
    return Call({"entries": [_entry_input()]})


async def _alice_entry(stage: Stage, seat: str) -> Call:
    entry = await stage.factory.entry(stage.world.alice, recorded_at=NOW - timedelta(hours=3), pain_now=6)
    patch = {"painNow": 2}
    return Call({"id": str(entry.id), "input": patch}, {"id": _random(), "input": patch}, frozenset({str(entry.id)}))


async def _alice_prompt(stage: Stage, seat: str) -> Call:
    prompt = await open_prompt(stage.world.alice, "daily_diary", NOW, anchor=f"matrix:{uuid4().hex[:12]}")
    return Call(
        {"id": str(prompt.id), "event": "DELIVERED"},
        {"id": _random(), "event": "DELIVERED"},
        frozenset({str(prompt.id)}),
    )


async def _enrolment(stage: Stage, seat: str) -> Call:
    # The caller's own clinic's plan: what hides Alice from the other clinic is her record, not the plan.
    plan = str(stage.plans[stage.clinic_of(seat)])
    return Call({"patientId": stage.alice_id, "planId": plan}, {"patientId": _random(), "planId": plan})


async def _booking(stage: Stage, seat: str) -> Call:
    def booking(patient_id: str) -> dict[str, Any]:
        starts = (NOW + timedelta(days=7)).isoformat()
        return {"input": {"patientId": patient_id, "startsAt": starts, "plannedDurationMinutes": 60}}

    return Call(booking(stage.alice_id), booking(_random()))


async def _alice_session(stage: Stage, seat: str) -> Call:
    session = await stage.services.treatment.schedule(
        stage.world.clinician.actor,
        stage.world.alice.patient.id,
        starts_at=NOW + timedelta(days=3),
        planned_duration_minutes=60,
        course_id=None,
        now=NOW,
    )
    change = {"notes": "moved to the afternoon"}
    return Call(
        {"id": str(session.id), "input": change}, {"id": _random(), "input": change}, frozenset({str(session.id)})
    )


async def _new_device(stage: Stage, seat: str) -> Call:
    return Call({"input": {"provider": "FCM", "token": f"matrix-{uuid4().hex}"}})


async def _alice_device(stage: Stage, seat: str) -> Call:
    token = f"matrix-{uuid4().hex}"
    device = await devices.register(stage.world.alice.actor, ProviderName.FCM, token, None, now=NOW)
    return Call({"token": token}, markers=frozenset({str(device.id)}))


async def _answers(stage: Stage, seat: str) -> Call:
    return Call({"input": phq9()})


async def _alice_fresh_alert(stage: Stage, seat: str) -> Call:
    alert = await _alert(stage.world.alice)
    return Call({"id": str(alert.id)}, {"id": _random()}, frozenset({str(alert.id)}))


async def _settings_change(stage: Stage, seat: str) -> Call:
    current = await stage.services.alerts.settings(stage.world.admin.actor)
    minutes = 31 if current.escalation_delay == timedelta(minutes=30) else 30
    return Call({"input": {"version": current.version, "escalationMinutes": minutes}})


async def _stand_in(stage: Stage, seat: str) -> Actor | None:
    """A fresh account of the seat's role and clinic (no one for the anonymous seat)."""
    actor = stage.actor(seat)
    if actor is None:
        return None
    clinic = stage.world.home if actor.clinic_id == stage.world.home.id else stage.world.away
    if actor.is_patient:
        return (await stage.factory.patient(clinic, name=f"Stand-in for {seat}")).actor
    return (await stage.factory.staff(clinic, actor.role)).actor


async def _own_erasure(stage: Stage, seat: str) -> Call:
    return Call({"password": PASSWORD}, caller=await _stand_in(stage, seat))


async def _new_password(stage: Stage, seat: str) -> Call:
    variables = {"current": PASSWORD, "new": "violet hammock canyon 1987"}
    return Call(variables, caller=await _stand_in(stage, seat))


async def _totp_enrolment(stage: Stage, seat: str) -> Call:
    return Call({"password": PASSWORD}, caller=await _stand_in(stage, seat))


async def _totp_confirmation(stage: Stage, seat: str) -> Call:
    caller = await _stand_in(stage, seat)
    if caller is None or not caller.is_staff:
        return Call({"otp": "000000"}, caller=caller)
    enrolment = await stage.services.accounts.second_factor.enrol(caller, PASSWORD, now=NOW)
    return Call({"otp": totp.code_at(enrolment.secret, totp.step_at(NOW))}, caller=caller)


async def _totp_removal(stage: Stage, seat: str) -> Call:
    caller = await _stand_in(stage, seat)
    if caller is None or not caller.is_staff:
        return Call({"password": PASSWORD, "otp": "000000"}, caller=caller)
    second_factor = stage.services.accounts.second_factor
    secret = (await second_factor.enrol(caller, PASSWORD, now=NOW)).secret
    # Confirmed a few steps earlier: a code is accepted once, so removal needs the next one.
    earlier = NOW - timedelta(seconds=3 * totp.STEP_SECONDS)
    await second_factor.confirm(caller, totp.code_at(secret, totp.step_at(earlier)), now=earlier)
    return Call({"password": PASSWORD, "otp": totp.code_at(secret, totp.step_at(NOW))}, caller=caller)


async def _colleague(stage: Stage, seat: str) -> Call:
    colleague = await stage.factory.staff(stage.world.home)
    return Call({"accountId": str(colleague.account.id)}, {"accountId": _random()})


async def _clinic_security(stage: Stage, seat: str) -> Call:
    # Never switched on: the export tests sign the stage's staff in with tokens, which the requirement would limit.
    return Call({"input": {"requireStaffOtp": False}, "password": PASSWORD})


async def _erasure_by_the_clinic(stage: Stage, seat: str) -> Call:
    erased = await stage.factory.patient(stage.world.home, name="Erin")
    reason = "asked at the front desk"
    return Call(
        {"patientId": str(erased.patient.id), "reason": reason, "password": PASSWORD},
        {"patientId": _random(), "reason": reason, "password": PASSWORD},
        frozenset({str(erased.patient.id)}),
    )


async def _preferences(stage: Stage, seat: str) -> Call:
    return Call({"input": {"diaryTime": "20:30"}})


# --- the matrix -----------------------------------------------------------------------------------------------

PATIENT_READ = Audit("patient.read")
PATIENT_EVERYTHING = """
query PatientEverything($id: ID!) {
  patient(id: $id) {
    id displayName status timezone diaryTime quietHoursStart quietHoursEnd notificationsEnabled createdAt activatedAt
    diary(first: 5) { edges { node { id } } }
    sessions { id }
    courses { id }
    prompts { id }
    adherence { rate }
    outcomes { started }
    series(metric: PAIN_NOW, from: "2026-11-01", to: "2026-11-27") { values }
    questionnaires(first: 5) { edges { node { id } } }
    alerts(first: 5) { edges { node { id } } }
    lastEntry { id }
    overview { lastEntryAt painMean7Days painEntries7Days adherence { rate } openAlerts }
    email
  }
}
"""


def _patient_field(name: str, selection: str, row_cells: Mapping[str, str] = RECORD) -> Row:
    document = f"query Patient{name[0].upper()}{name[1:]}($id: ID!) {{ patient(id: $id) {{ {selection} }} }}"
    return Row(f"patient.{name}", document, row_cells, _alice, PATIENT_READ)


TABLE: tuple[Row, ...] = (
    # --- queries
    Row("me", "query Me { me { id role } }", SIGNED_IN, audit=NO_AUDIT),
    Row("myDiary", "query MyDiary { myDiary(first: 5) { edges { node { id painNow } } } }", PATIENT_OWN),
    Row(
        "patients",
        "query Patients { patients(first: 100) { edges { node { id displayName } } } }",
        STAFF,
        audit=Audit("patient.list", LISTED),
    ),
    Row(
        "patients.diary",
        "query PatientsDiaries { patients(first: 100) "
        "{ edges { node { id lastEntry { id } diary(first: 1) { edges { node { id } } } } } } }",
        STAFF,
        audit=Audit("patient.list", LISTED),
        note="a list and a read of each listed patient's diary: still one event",
    ),
    Row(
        "patients.overview",
        "query PatientsOverviews { patients(first: 100) { edges { node { id lastEntry { id } "
        "overview { lastEntryAt painMean7Days adherence { rate } openAlerts } } } } }",
        STAFF,
        audit=Audit("patient.list", LISTED),
        note="a list and each listed patient's overview (issue 6): still one event",
    ),
    Row("patient", "query Patient($id: ID!) { patient(id: $id) { id displayName } }", RECORD, _alice, PATIENT_READ),
    _patient_field("diary", "diary(first: 5) { edges { node { id painNow } } }"),
    _patient_field("sessions", "sessions { id startsAt }"),
    _patient_field("courses", "courses { id }"),
    _patient_field("prompts", "prompts { id status }"),
    _patient_field("adherence", "adherence { instrument rate }"),
    _patient_field("outcomes", "outcomes { started }"),
    _patient_field("series", 'series(metric: PAIN_NOW, from: "2026-11-01", to: "2026-11-27") { values }'),
    _patient_field("questionnaires", "questionnaires(first: 5) { edges { node { id } } }"),
    _patient_field("alerts", "alerts(first: 5) { edges { node { id } } }", STAFF_RECORD),
    _patient_field("lastEntry", "lastEntry { id painNow }"),
    _patient_field("overview", "overview { lastEntryAt painMean7Days openAlerts }", STAFF_RECORD),
    _patient_field("email", "email"),
    # Every field of a patient at once: still one event (test_audit_completeness checks it names every field).
    Row("patient.everything", PATIENT_EVERYTHING, STAFF_RECORD, _alice, PATIENT_READ),
    Row("myPrompts", "query MyPrompts { myPrompts { id status } }", PATIENT_OWN),
    Row("promptPlans", "query PromptPlans { promptPlans { id name } }", STAFF, audit=NO_AUDIT),
    Row(
        "auditEvents",
        "query AuditEvents { auditEvents(first: 5) { edges { node { id action } } } }",
        ADMIN,
        audit=NO_AUDIT,
        note="the trail itself: reading it is not a read of patient data",
    ),
    Row("myTrends", "query MyTrends { myTrends(days: 7) { days pain { values } } }", PATIENT_OWN),
    Row("instruments", "query Instruments { instruments { id version } }", SIGNED_IN, audit=NO_AUDIT),
    Row("instrument", 'query Instrument { instrument(id: "phq9") { id version } }', SIGNED_IN, audit=NO_AUDIT),
    Row(
        "myQuestionnaires",
        "query MyQuestionnaires { myQuestionnaires(first: 5) { edges { node { id score } } } }",
        PATIENT_OWN,
    ),
    Row(
        "alerts",
        "query Alerts { alerts(first: 100) { edges { node { id patientId } } } }",
        STAFF,
        audit=Audit("alert.read", LISTED),
    ),
    Row(
        "alerts.patient",
        "query AlertsPatients { alerts(first: 100) "
        "{ edges { node { id history { action } patient { id diary(first: 1) { edges { node { id } } } } } } } }",
        STAFF,
        audit=Audit("alert.read", LISTED),
        note="each alert's patient and their diary, read through the list: still one event",
    ),
    Row(
        "alerts.patientId",
        "query PatientAlerts($patientId: ID!) { alerts(patientId: $patientId, first: 5) { edges { node { id } } } }",
        STAFF_OBJECT,
        _alice_filter,
        Audit("alert.read"),
    ),
    Row("alertSettings", "query AlertSettings { alertSettings { version } }", ADMIN, audit=NO_AUDIT),
    Row("clinicSecurity", "query ClinicSecurity { clinicSecurity { requireStaffOtp } }", ADMIN, audit=NO_AUDIT),
    # --- mutations: accounts (public)
    Row(
        "login",
        "mutation Login($email: String!, $password: String!) "
        "{ login(email: $email, password: $password) { account { id } } }",
        PUBLIC,
        _sign_in,
        NO_AUDIT,
    ),
    Row(
        "refreshSession",
        "mutation Refresh($token: String!) { refreshSession(refreshToken: $token) { account { id } } }",
        PUBLIC,
        _fresh_session,
        NO_AUDIT,
    ),
    Row(
        "logout", "mutation Logout($token: String!) { logout(refreshToken: $token) }", PUBLIC, _fresh_session, NO_AUDIT
    ),
    Row(
        "registerPatient",
        "mutation Register($input: RegisterPatientInput!) { registerPatient(input: $input) { account { role } } }",
        PUBLIC,
        _fresh_invite,
        NO_AUDIT,
    ),
    # --- mutations: accounts (signed in). Each call is made by a stand-in made for it: these change the caller.
    Row(
        "changePassword",
        "mutation ChangePassword($current: String!, $new: String!) "
        "{ changePassword(currentPassword: $current, newPassword: $new) }",
        SIGNED_IN,
        _new_password,
        Audit("account.password_change", CLINIC),
        # A patient's too: a stolen token used to take the account over must show in the trail.
        own_audit=Audit("account.password_change", CLINIC),
    ),
    Row(
        "enrollTotp",
        "mutation EnrollTotp($password: String!) { enrollTotp(password: $password) { issuer } }",
        STAFF,
        _totp_enrolment,
        Audit("account.totp_enrol", CLINIC),
    ),
    Row(
        "confirmTotp",
        "mutation ConfirmTotp($otp: String!) { confirmTotp(otp: $otp) { id } }",
        STAFF,
        _totp_confirmation,
        Audit("account.totp_confirm", CLINIC),
    ),
    Row(
        "disableTotp",
        "mutation DisableTotp($password: String!, $otp: String!) "
        "{ disableTotp(password: $password, otp: $otp) { id } }",
        STAFF,
        _totp_removal,
        Audit("account.totp_disable", CLINIC),
    ),
    Row(
        "resetStaffTotp",
        "mutation ResetStaffTotp($accountId: ID!) { resetStaffTotp(accountId: $accountId) { id } }",
        ADMIN,
        _colleague,
        Audit("account.totp_reset", CLINIC),
    ),
    Row(
        "updateClinicSecurity",
        "mutation UpdateClinicSecurity($input: ClinicSecurityInput!, $password: String!) "
        "{ updateClinicSecurity(input: $input, password: $password) { requireStaffOtp } }",
        ADMIN,
        _clinic_security,
        Audit("clinic.security_update", CLINIC),
    ),
    # --- mutations: the patient's own
    Row(
        "logDiaryEntry",
        "mutation Log($input: DiaryEntryInput!) { logDiaryEntry(input: $input) { id } }",
        PATIENT_OWN,
        _new_entry,
    ),
    Row(
        "syncDiaryEntries",
        "mutation Sync($entries: [DiaryEntryInput!]!) { syncDiaryEntries(entries: $entries) { clientId status } }",
        PATIENT_OWN,
        _new_entries,
    ),
    Row(
        "updateDiaryEntry",
        "mutation UpdateEntry($id: ID!, $input: DiaryEntryPatch!) { updateDiaryEntry(id: $id, input: $input) { id } }",
        PATIENT_OBJECT,
        _alice_entry,
    ),
    Row(
        "deleteDiaryEntry",
        "mutation DeleteEntry($id: ID!) { deleteDiaryEntry(id: $id) { id deleted } }",
        PATIENT_OBJECT,
        _alice_entry,
    ),
    Row(
        "acknowledgePrompt",
        "mutation AckPrompt($id: ID!, $event: PromptEvent!) { acknowledgePrompt(id: $id, event: $event) { status } }",
        PATIENT_OBJECT,
        _alice_prompt,
    ),
    Row(
        "updateMyPreferences",
        "mutation Preferences($input: PreferencesInput!) { updateMyPreferences(input: $input) { diaryTime } }",
        PATIENT_OWN,
        _preferences,
    ),
    Row(
        "registerDevice",
        "mutation RegisterDevice($input: DeviceInput!) { registerDevice(input: $input) { id enabled } }",
        PATIENT_OWN,
        _new_device,
    ),
    Row(
        "unregisterDevice",
        "mutation UnregisterDevice($token: String!) { unregisterDevice(token: $token) }",
        PATIENT_OWN,
        _alice_device,
        note="Bob is ALLOWed and told false: Alice's token is not one of his",
    ),
    Row(
        "submitQuestionnaire",
        "mutation Submit($input: QuestionnaireInput!) { submitQuestionnaire(input: $input) { score } }",
        PATIENT_OWN,
        _answers,
    ),
    # --- mutations: clinic staff
    Row(
        "invitePatient",
        'mutation Invite { invitePatient(input: {displayName: "New Person", timezone: "Europe/Berlin"}) '
        "{ code patient { id } } }",
        STAFF,
        audit=Audit("patient.invite", RETURNED, ("invitePatient", "patient", "id")),
    ),
    Row(
        "enrollPatient",
        "mutation Enroll($patientId: ID!, $planId: ID!) "
        "{ enrollPatient(patientId: $patientId, planId: $planId) { id } }",
        STAFF_OBJECT,
        _enrolment,
        Audit("patient.enroll"),
    ),
    Row(
        "scheduleInfusion",
        "mutation Schedule($input: ScheduleInfusionInput!) { scheduleInfusion(input: $input) { id } }",
        STAFF_OBJECT,
        _booking,
        Audit("session.schedule"),
    ),
    Row(
        "updateInfusion",
        "mutation UpdateInfusion($id: ID!, $input: UpdateInfusionInput!) "
        "{ updateInfusion(id: $id, input: $input) { id } }",
        STAFF_OBJECT,
        _alice_session,
        Audit("session.update"),
    ),
    Row(
        "acknowledgeAlert",
        "mutation AckAlert($id: ID!) { acknowledgeAlert(id: $id) { id status } }",
        STAFF_OBJECT,
        _alice_fresh_alert,
        Audit("alert.acknowledge"),
    ),
    Row(
        "resolveAlert",
        "mutation ResolveAlert($id: ID!) { resolveAlert(id: $id) { id status } }",
        STAFF_OBJECT,
        _alice_fresh_alert,
        Audit("alert.resolve"),
    ),
    Row(
        "updateAlertSettings",
        "mutation AlertSettings($input: AlertSettingsInput!) { updateAlertSettings(input: $input) { version } }",
        ADMIN,
        _settings_change,
        Audit("alert.settings_update", CLINIC),
    ),
    # --- erasure: each call erases a patient made for it (Alice stays for the other cells)
    Row(
        "eraseMyAccount",
        "mutation EraseMe($password: String!) { eraseMyAccount(password: $password) { patientId status } }",
        PATIENT_OWN,
        _own_erasure,
        own_audit=Audit("patient.erase", OWN),
        note="patient seats are played by a stand-in of the same clinic, erased by the call",
    ),
    Row(
        "erasePatient",
        "mutation ErasePatient($patientId: ID!, $reason: String!, $password: String!) "
        "{ erasePatient(patientId: $patientId, reason: $reason, password: $password) { patientId status } }",
        ADMIN,
        _erasure_by_the_clinic,
        Audit("patient.erase", RETURNED, ("erasePatient", "patientId")),
    ),
    # --- subscriptions, in process through `Schema.subscribe`: the first delivery after Alice's alert is announced
    # (the websocket transport itself: test_alert_subscription.py).
    Row(
        "alertRaised",
        "subscription AlertRaised { alertRaised { id patientId patient { id } } }",
        STAFF,
        audit=Audit("alert.read"),
        note="the other clinic's clinician subscribes to their own clinic and receives only its alerts",
    ),
    Row(
        "alertEscalated",
        "subscription AlertEscalated { alertEscalated { id patientId } }",
        ADMIN,
        audit=Audit("alert.read"),
    ),
)


def schema_operations() -> set[tuple[str, str]]:
    """Every (operation type, root field) the schema serves, read from the schema object itself."""
    graphql_schema = SCHEMA._schema
    roots = {
        "query": graphql_schema.query_type,
        "mutation": graphql_schema.mutation_type,
        "subscription": graphql_schema.subscription_type,
    }
    return {(kind, name) for kind, root in roots.items() if root is not None for name in root.fields}


def dig(data: Any, path: Iterable[str]) -> Any:
    for key in path:
        data = data[key]
    return data


def fresh_request_id(row: Row, seat: str) -> str:
    return f"{row.name}-{seat}-{uuid4().hex[:8]}"
