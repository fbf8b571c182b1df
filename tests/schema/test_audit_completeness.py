"""Audit completeness: every staff call of an operation that reads or writes patient data leaves exactly one audit
event, whatever it selects, and patients reading their own data leave none.

Driven by the authorization matrix (authz_support.TABLE): every row that staff may call declares what the trail
shows for it (`Audit`: the action and whom it names, or NO_AUDIT), and each such call is run here as the clinician
and the admin of Alice's clinic. A row staff may call without that declaration fails here, so a new staff operation
cannot go unaudited unnoticed. One event per operation and patient (api/domain/audit/service.py): a query that
reads several of a patient's fields is one event; a list is one event covering every patient on the page.

The export routes (FHIR `$everything`, diary CSV, bulk NDJSON, a patient's own record) are called over HTTP through
the real app: one event per export, the patient's own included (a stolen patient token that downloads the record
must show in the trail).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import pytest_asyncio
from graphql import FieldNode, GraphQLObjectType, OperationDefinitionNode, parse

from api.app import create_app
from api.domain.actor import Actor
from api.domain.audit.models import AuditEvent, AuditSubject
from api.domain.services import Services
from api.export import ExportRoutes
from api.settings import Settings
from tests.conftest import NOW, Database
from tests.graphql import SCHEMA
from tests.schema.authz_support import (
    ALLOW,
    CLINIC,
    CLINICIAN_1,
    LISTED,
    OWN,
    PATIENT_A,
    PATIENT_B,
    PATIENT_EVERYTHING,
    RETURNED,
    SEATS,
    STAFF,
    STAFF_SEATS,
    TABLE,
    TARGET,
    Audit,
    Row,
    Stage,
    dig,
    fresh_request_id,
    staged,
)

GRAPHQL_IP = "198.51.100.1"  # tests/graphql.py
HTTP_IP = "203.0.113.7"


@pytest_asyncio.fixture(scope="module")
async def stage(database: Database, services: Services) -> AsyncIterator[Stage]:
    async with staged(services) as shared:
        yield shared


@pytest_asyncio.fixture(scope="module")
async def client(stage: Stage, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app on the stage's database, as the `http` fixture builds it (which would empty the stage)."""
    app = create_app(settings, manage_orm=False, clock=lambda: NOW)
    transport = httpx.ASGITransport(app=app, client=(HTTP_IP, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://interlude.test") as http:
        yield http


def test_every_row_that_staff_may_call_declares_its_audit() -> None:
    undeclared = [row.name for row in TABLE if row.staff_may_call and row.audit is None]
    declared_but_closed = [row.name for row in TABLE if not row.staff_may_call and row.audit is not None]

    assert not undeclared, f"say what the audit trail shows for a staff call (Audit or NO_AUDIT) of: {undeclared}"
    assert not declared_but_closed, f"staff may not call these; their Audit is never checked: {declared_but_closed}"


def test_the_everything_query_selects_every_field_of_a_patient() -> None:
    patient_type = SCHEMA._schema.get_type("Patient")
    assert isinstance(patient_type, GraphQLObjectType)
    operation = next(d for d in parse(PATIENT_EVERYTHING).definitions if isinstance(d, OperationDefinitionNode))
    root = next(s for s in operation.selection_set.selections if isinstance(s, FieldNode))
    assert root.selection_set is not None
    selected = {s.name.value for s in root.selection_set.selections if isinstance(s, FieldNode)}

    assert set(patient_type.fields) - selected == set(), "add the field to authz_support.PATIENT_EVERYTHING"


STAFF_CALLS = [
    pytest.param(row, seat, id=f"{row.name}-{seat}")
    for row in TABLE
    for seat in STAFF_SEATS
    if row.cells[seat] == ALLOW
]


@pytest.mark.parametrize(("row", "seat"), STAFF_CALLS)
async def test_a_staff_call_leaves_exactly_the_declared_event(row: Row, seat: str, stage: Stage) -> None:
    assert row.audit is not None, f"{row.name}: staff may call it, so its row must declare its Audit"
    request_id = fresh_request_id(row, seat)

    call, result = await stage.run(row, seat, request_id=request_id)

    data = result.ok()
    events = await AuditEvent.filter(request_id=request_id)
    if row.audit.action is None:
        assert events == []
        return
    assert len(events) == 1, [e.action for e in events]
    await _check(
        events[0],
        row.audit,
        actor=call.caller or _caller(stage, seat),
        stage=stage,
        operation=row.operation_name,
        ip=GRAPHQL_IP,
        data=data,
    )


SELF_CALLS = [
    pytest.param(row, seat, id=f"{row.name}-{seat}")
    for row in TABLE
    for seat in (PATIENT_A, PATIENT_B)
    if row.cells[seat] == ALLOW
]


@pytest.mark.parametrize(("row", "seat"), SELF_CALLS)
async def test_a_patients_own_call_leaves_no_event_unless_declared(row: Row, seat: str, stage: Stage) -> None:
    request_id = fresh_request_id(row, seat)

    call, result = await stage.run(row, seat, request_id=request_id)

    data = result.ok()
    events = await AuditEvent.filter(request_id=request_id)
    if row.own_audit is None:
        assert events == []
        return
    assert len(events) == 1, [e.action for e in events]
    caller = call.caller or _caller(stage, seat)
    await _check(
        events[0], row.own_audit, actor=caller, stage=stage, operation=row.operation_name, ip=GRAPHQL_IP, data=data
    )


async def test_two_staff_operations_are_two_events(stage: Stage) -> None:
    row = next(r for r in TABLE if r.name == "patient.everything")

    for _ in range(2):
        (await stage.run(row, CLINICIAN_1, request_id="twice"))[1].ok()

    assert await AuditEvent.filter(request_id="twice").count() == 2


async def test_a_delivery_that_shows_the_alerts_patient_is_still_one_event(stage: Stage) -> None:
    row = Row(
        "alertRaised.patient",
        "subscription AlertRaisedPatient { alertRaised { id patient { id displayName } } }",
        STAFF,
        audit=Audit("alert.read"),
    )

    (await stage.first_delivery(row, CLINICIAN_1, request_id="delivery-with-patient")).ok()

    events = await AuditEvent.filter(request_id="delivery-with-patient")
    assert [e.action for e in events] == ["alert.read"]


# --- exports over HTTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    route: str  # as ExportRoutes registers it
    operation: str  # the request's operation name in the trail
    url: Callable[[Stage], str]
    # Per seat: the one event an export leaves, or the HTTP status of the refusal (which leaves none).
    cells: Mapping[str, Audit | int]


def _by_seat(*outcomes: Audit | int) -> dict[str, Audit | int]:
    return dict(zip(SEATS, outcomes, strict=True))


FHIR = Audit("export.fhir")
CSV = Audit("export.csv")
EXPORTS = {
    "fhir-everything": Export(
        "/fhir/Patient/{patient_id}/$everything",
        "fhir.everything",
        lambda s: f"/fhir/Patient/{s.alice_id}/$everything",
        _by_seat(401, FHIR, 404, FHIR, 404, FHIR),
    ),
    "diary-csv-patient": Export(
        "/export/diary.csv",
        "export.diary_csv",
        lambda s: f"/export/diary.csv?patientId={s.alice_id}",
        _by_seat(401, CSV, 404, CSV, 404, CSV),
    ),
    "diary-csv-clinic": Export(
        "/export/diary.csv",
        "export.diary_csv",
        lambda s: "/export/diary.csv",
        _by_seat(401, Audit("export.csv", OWN), Audit("export.csv", OWN), 403, 403, Audit("export.csv", LISTED)),
    ),
    "clinic-ndjson": Export(
        "/export/clinic.ndjson",
        "export.clinic_ndjson",
        lambda s: "/export/clinic.ndjson",
        _by_seat(401, 403, 403, 403, 403, Audit("export.bulk", LISTED)),
    ),
    "own-record": Export(
        "/export/me",
        "export.me",
        lambda s: "/export/me",
        _by_seat(401, Audit("export.fhir", OWN), Audit("export.fhir", OWN), 403, 403, 403),
    ),
}


def test_every_export_route_has_a_row(services: Services) -> None:
    served = {route.path for route in ExportRoutes(services, lambda: NOW).routes()}

    assert served == {e.route for e in EXPORTS.values()}


def _bearer(stage: Stage, seat: str) -> dict[str, str]:
    actor = stage.actor(seat)
    if actor is None:
        return {}
    assert actor.account_id is not None
    token, _ = stage.services.accounts.tokens.issue(
        account_id=actor.account_id, role=actor.role, clinic_id=actor.clinic_id, patient_id=actor.patient_id, now=NOW
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("name", "seat"), [pytest.param(name, seat, id=f"{name}-{seat}") for name in EXPORTS for seat in SEATS]
)
async def test_an_export_leaves_exactly_one_event(
    name: str, seat: str, stage: Stage, client: httpx.AsyncClient
) -> None:
    export = EXPORTS[name]
    expected = export.cells[seat]
    request_id = f"{name}-{seat}-{uuid4().hex[:8]}"

    response = await client.get(export.url(stage), headers={**_bearer(stage, seat), "X-Request-ID": request_id})

    events = await AuditEvent.filter(request_id=request_id)
    if isinstance(expected, int):
        assert response.status_code == expected, response.text
        assert events == []
        assert [m for m in stage.markers() if m in response.text] == []
        return
    assert response.status_code == 200, response.text
    assert len(events) == 1, [e.action for e in events]
    await _check(
        events[0], expected, actor=_caller(stage, seat), stage=stage, operation=export.operation, ip=HTTP_IP, data=None
    )


# --- checking one event ---------------------------------------------------------------------------------------


def _caller(stage: Stage, seat: str) -> Actor:
    actor = stage.actor(seat)
    assert actor is not None
    return actor


async def _check(
    event: AuditEvent,
    audit: Audit,
    *,
    actor: Actor,
    stage: Stage,
    operation: str,
    ip: str,
    data: dict[str, Any] | None,
) -> None:
    assert (event.action, event.actor_id, event.actor_role, event.clinic_id) == (
        audit.action,
        actor.account_id,
        actor.role.value,
        actor.clinic_id,
    )
    assert (event.operation, event.ip, event.created_at) == (operation, ip, NOW)
    subjects = {s.patient_id for s in await AuditSubject.filter(event_id=event.id)}
    world = stage.world
    alice, bob = world.alice.patient.id, world.bob.patient.id
    if audit.subject == TARGET:
        named: UUID | None = alice
    elif audit.subject == OWN:
        named = actor.patient_id
    elif audit.subject == RETURNED:
        named = UUID(dig(data, audit.returned))
    elif audit.subject == LISTED:
        assert event.patient_id is None
        assert {alice, bob} <= subjects
        assert stage.dave.patient.id not in subjects  # the other clinic's
        return
    else:
        assert audit.subject == CLINIC, audit.subject
        assert (event.patient_id, subjects) == (None, set())
        return
    assert (event.patient_id, subjects) == (named, {named})
