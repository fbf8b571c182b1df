"""`alertRaised` over a real websocket: the app runs under uvicorn on a free port, a websockets client speaks
graphql-transport-ws to it, and alerts are raised by a patient's diary entry sent over HTTP to the same server.

On PostgreSQL two app instances (two replicas, each with its own broker and listening connection) serve one
database: an alert raised through one reaches a subscriber connected to the other.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from api.app import create_app
from api.domain.account.models import Clinic
from api.domain.account.tokens import AccessTokens
from api.domain.actor import Actor, Role
from api.domain.alert.broker import AlertBroker
from api.domain.alert.models import Alert
from api.domain.audit.models import AuditEvent
from api.domain.services import Services
from tests.conftest import Database, make_settings
from tests.factories import Factory, PatientUser, Staff
from tests.schema.diary_support import entry_input

# Generous: a message normally arrives in milliseconds. Reaching it is a failure, never a wait.
WAIT = 10
PROTOCOL = Subprotocol("graphql-transport-ws")
ALERT_RAISED = """
subscription { alertRaised { id patientId rule severity status raisedAt escalatedAt triggers { type id } } }
"""
ALERT_ESCALATED = """
subscription { alertEscalated { id patientId rule severity status raisedAt escalatedAt triggers { type id } } }
"""
LOG = "mutation Log($input: DiaryEntryInput!) { logDiaryEntry(input: $input) { id } }"
ON_POSTGRES = pytest.mark.parametrize("database", ["postgres"], indirect=True)


class Clock:
    """The app's clock: tests move it forward by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Server:
    app: Starlette
    address: str

    @property
    def broker(self) -> AlertBroker:
        services: Services = self.app.state.services
        return services.alerts.broker


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[Server]:
    """The app under uvicorn, in this event loop, on a port the system picked."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    # Listening before uvicorn starts: a client that connects first waits in the backlog instead of being refused.
    sock.listen()
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None, access_log=False, ws="wsproto"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield Server(app, f"{host}:{port}")
    finally:
        server.should_exit = True
        await serving
        sock.close()


class Socket:
    """One graphql-transport-ws client connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            message: dict[str, Any] = json.loads(await self.ws.recv())
        return message

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.send(
            {"type": "connection_init"} if payload is None else {"type": "connection_init", "payload": payload}
        )
        return await self.receive()

    async def subscribe(self, operation_id: str = "1", query: str = ALERT_RAISED) -> None:
        await self.send({"id": operation_id, "type": "subscribe", "payload": {"query": query}})

    async def run(self, operation_id: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """A query or mutation on the connection: its one result, once the server has completed it."""
        await self.send(
            {"id": operation_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}}
        )
        result, completed = await self.receive(), await self.receive()
        assert completed == {"id": operation_id, "type": "complete"}
        return result

    async def close_code(self) -> int | None:
        """The code the server closed the connection with, once it has."""
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(WAIT):
                await self.ws.recv()
        return closed.value.rcvd.code if closed.value.rcvd else None


@asynccontextmanager
async def websocket(server: Server, headers: dict[str, str] | None = None) -> AsyncIterator[Socket]:
    url = f"ws://{server.address}/graphql"
    async with connect(url, subprotocols=[PROTOCOL], additional_headers=headers, proxy=None) as ws:
        yield Socket(ws)


@asynccontextmanager
async def subscribed(server: Server, token: str, clinic_id: UUID, query: str = ALERT_RAISED) -> AsyncIterator[Socket]:
    """Authenticated and subscribed: returns once the server's broker holds the subscription."""
    before = server.broker.subscribers(clinic_id)
    async with websocket(server) as ws:
        assert await ws.init({"authorization": f"Bearer {token}"}) == {"type": "connection_ack"}
        await ws.subscribe(query=query)
        async with asyncio.timeout(WAIT):
            await server.broker.wait_subscribers(clinic_id, before + 1)
        yield ws


def bearer(services: Services, who: Actor, now: datetime) -> str:
    """An access token as `who`, issued at `now` (valid 15 minutes)."""
    assert who.account_id is not None
    token, _ = services.accounts.tokens.issue(
        account_id=who.account_id, role=who.role, clinic_id=who.clinic_id, patient_id=who.patient_id, now=now
    )
    return token


async def report_chest_pain(server: Server, token: str, now: datetime) -> None:
    """The patient's phone sends a diary entry that the critical red-flag rule raises an alert for."""
    sent = entry_input(now - timedelta(hours=1), sideEffects=[{"code": "CHEST_PAIN", "severity": 2}])
    async with httpx.AsyncClient(base_url=f"http://{server.address}", trust_env=False) as client:
        response = await client.post(
            "/graphql", json={"query": LOG, "variables": {"input": sent}}, headers={"authorization": f"Bearer {token}"}
        )
    body = response.json()
    assert "errors" not in body, body


def expected_alert(alert: Alert, *, escalated_at: str | None = None) -> dict[str, Any]:
    return {
        "id": str(alert.id),
        "patientId": str(alert.patient_id),
        "rule": "red_flag_symptom",
        "severity": "CRITICAL",
        "status": "OPEN",
        "raisedAt": "2026-11-26T12:00:00+00:00",
        "escalatedAt": escalated_at,
        "triggers": [{"type": "DiaryEntry", "id": alert.triggers[0]["id"]}],
    }


async def reads_of_alerts(who: Staff) -> list[tuple[UUID | None, UUID | None]]:
    events = await AuditEvent.filter(actor_id=who.account.id, action="alert.read").order_by("created_at", "id")
    return [(e.patient_id, e.object_id) for e in events]


async def reads_of_patients(who: Staff) -> list[tuple[UUID | None, datetime, str | None]]:
    events = await AuditEvent.filter(actor_id=who.account.id, action="patient.read").order_by("created_at", "id")
    return [(e.patient_id, e.created_at, e.operation) for e in events]


def escalating_after(db: Database, clock: Clock, minutes: int) -> Starlette:
    """An app whose clinics escalate critical alerts left unacknowledged for `minutes`."""
    settings = make_settings(db.url).model_copy(update={"alert_escalation_minutes": minutes})
    return create_app(settings, manage_orm=False, clock=clock)


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


@pytest_asyncio.fixture
async def server(db: Database, clock: Clock) -> AsyncIterator[Server]:
    async with running(create_app(make_settings(db.url), manage_orm=False, clock=clock)) as live:
        yield live


@dataclass
class ClinicPeople:
    clinic: Clinic
    clinician: Staff
    admin: Staff
    patient: PatientUser


@pytest_asyncio.fixture
async def people(factory: Factory) -> Callable[[], Awaitable[ClinicPeople]]:
    async def make() -> ClinicPeople:
        clinic = await factory.clinic()
        return ClinicPeople(
            clinic, await factory.staff(clinic), await factory.staff(clinic, Role.ADMIN), await factory.patient(clinic)
        )

    return make


# --- Delivery ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.ADMIN])
async def test_staff_receive_an_alert_raised_in_their_clinic(
    server: Server, services: Services, people: Callable[[], Awaitable[ClinicPeople]], now: datetime, role: Role
) -> None:
    own = await people()
    staff = own.clinician if role is Role.CLINICIAN else own.admin
    async with subscribed(server, bearer(services, staff.actor, now), own.clinic.id) as ws:
        await report_chest_pain(server, bearer(services, own.patient.actor, now), now)
        message = await ws.receive()
    alert = await Alert.get(patient_id=own.patient.patient.id)
    assert message == {"id": "1", "type": "next", "payload": {"data": {"alertRaised": expected_alert(alert)}}}
    # Each delivery is an audited read of the alert's patient, by the subscriber.
    assert await reads_of_alerts(staff) == [(own.patient.patient.id, alert.id)]


async def test_the_token_may_come_in_the_upgrade_requests_authorization_header(
    server: Server, services: Services, people: Callable[[], Awaitable[ClinicPeople]], now: datetime
) -> None:
    own = await people()
    token = bearer(services, own.clinician.actor, now)
    async with websocket(server, {"Authorization": f"Bearer {token}"}) as ws:
        assert await ws.init() == {"type": "connection_ack"}
        await ws.subscribe()
        async with asyncio.timeout(WAIT):
            await server.broker.wait_subscribers(own.clinic.id, 1)
        await report_chest_pain(server, bearer(services, own.patient.actor, now), now)
        message = await ws.receive()
    alert = await Alert.get(patient_id=own.patient.patient.id)
    assert message["payload"] == {"data": {"alertRaised": expected_alert(alert)}}


async def test_the_connection_init_key_may_be_capitalised(
    server: Server, services: Services, people: Callable[[], Awaitable[ClinicPeople]], now: datetime
) -> None:
    own = await people()
    async with websocket(server) as ws:
        token = bearer(services, own.clinician.actor, now)
        assert await ws.init({"Authorization": f"Bearer {token}"}) == {"type": "connection_ack"}


async def test_staff_of_another_clinic_receive_nothing(
    server: Server, services: Services, people: Callable[[], Awaitable[ClinicPeople]], now: datetime
) -> None:
    ours = await people()
    theirs = await people()
    outsider_token = bearer(services, theirs.clinician.actor, now)
    insider_token = bearer(services, ours.clinician.actor, now)
    async with (
        subscribed(server, outsider_token, theirs.clinic.id) as outsider,
        subscribed(server, insider_token, ours.clinic.id) as insider,
    ):
        await report_chest_pain(server, bearer(services, ours.patient.actor, now), now)
        ours_alert = await Alert.get(patient_id=ours.patient.patient.id)
        assert (await insider.receive())["payload"]["data"]["alertRaised"]["id"] == str(ours_alert.id)
        # A later alert of the outsider's own clinic is the first (and only) thing it hears.
        await report_chest_pain(server, bearer(services, theirs.patient.actor, now), now)
        theirs_alert = await Alert.get(patient_id=theirs.patient.patient.id)
        assert (await outsider.receive())["payload"]["data"]["alertRaised"]["id"] == str(theirs_alert.id)
    assert await reads_of_alerts(theirs.clinician) == [(theirs.patient.patient.id, theirs_alert.id)]
    assert await reads_of_alerts(ours.clinician) == [(ours.patient.patient.id, ours_alert.id)]


async def test_an_escalation_is_delivered_again_with_its_time(
    db: Database, services: Services, people: Callable[[], Awaitable[ClinicPeople]], clock: Clock, now: datetime
) -> None:
    own = await people()
    # Escalation after 5 minutes, so that it falls within the subscriber's token's 15 minutes.
    settings = make_settings(db.url).model_copy(update={"alert_escalation_minutes": 5})
    later = now + timedelta(minutes=6)
    app = create_app(settings, manage_orm=False, clock=clock)
    server_services: Services = app.state.services
    token = bearer(services, own.clinician.actor, now)
    async with running(app) as server, subscribed(server, token, own.clinic.id) as ws:
        await report_chest_pain(server, bearer(services, own.patient.actor, now), now)
        raised = await ws.receive()
        clock.now = later
        # What the jobs' escalation pass does, on the server's own services (and so its broker).
        escalated = await server_services.alerts.escalate(now=later)
        again = await ws.receive()
    alert = await Alert.get(patient_id=own.patient.patient.id)
    assert [a.id for a in escalated] == [alert.id]
    assert raised["payload"]["data"]["alertRaised"] == expected_alert(alert)
    assert again["payload"]["data"]["alertRaised"] == expected_alert(alert, escalated_at="2026-11-26T12:06:00+00:00")
    assert await reads_of_alerts(own.clinician) == [(own.patient.patient.id, alert.id)] * 2


async def test_each_delivery_reads_the_alerts_patient_at_its_own_time(
    db: Database, services: Services, people: Callable[[], Awaitable[ClinicPeople]], clock: Clock, now: datetime
) -> None:
    own = await people()
    patient_id = own.patient.patient.id
    with_patient = "subscription { alertRaised { id escalatedAt patient { id } } }"
    later = now + timedelta(minutes=10)
    app = escalating_after(db, clock, 9)
    server_services: Services = app.state.services
    token = bearer(services, own.clinician.actor, now)
    async with running(app) as server, subscribed(server, token, own.clinic.id, with_patient) as ws:
        await report_chest_pain(server, bearer(services, own.patient.actor, now), now)
        raised = await ws.receive()
        clock.now = later
        await server_services.alerts.escalate(now=later)
        escalated = await ws.receive()
    alert = await Alert.get(patient_id=patient_id)
    assert raised["payload"]["data"]["alertRaised"] == {
        "id": str(alert.id),
        "escalatedAt": None,
        "patient": {"id": str(patient_id)},
    }
    assert escalated["payload"]["data"]["alertRaised"] == {
        "id": str(alert.id),
        "escalatedAt": "2026-11-26T12:10:00+00:00",
        "patient": {"id": str(patient_id)},
    }
    # Two deliveries, one read each, each when it happened (not when the subscription started); selecting the
    # alert's patient in the same delivery adds no second event.
    events = await AuditEvent.filter(actor_id=own.clinician.account.id).order_by("created_at", "id")
    assert [(e.action, e.patient_id, e.created_at, e.operation) for e in events] == [
        ("alert.read", patient_id, now, "alertRaised"),
        ("alert.read", patient_id, later, "alertRaised"),
    ]


async def test_each_query_on_the_connection_is_audited_at_its_own_time(
    server: Server, services: Services, people: Callable[[], Awaitable[ClinicPeople]], clock: Clock, now: datetime
) -> None:
    own = await people()
    patient_id = own.patient.patient.id
    read = "query Chart($id: ID!) { patient(id: $id) { id } }"
    async with websocket(server) as ws:
        assert await ws.init({"authorization": f"Bearer {bearer(services, own.clinician.actor, now)}"}) == {
            "type": "connection_ack"
        }
        first = await ws.run("first", read, {"id": str(patient_id)})
        clock.now = now + timedelta(minutes=10)
        again = await ws.run("again", read, {"id": str(patient_id)})
    assert first["payload"] == again["payload"] == {"data": {"patient": {"id": str(patient_id)}}}
    assert await reads_of_patients(own.clinician) == [
        (patient_id, now, "Chart"),
        (patient_id, now + timedelta(minutes=10), "Chart"),
    ]


async def test_a_mutation_on_the_connection_takes_the_time_it_runs_at(
    server: Server, services: Services, people: Callable[[], Awaitable[ClinicPeople]], clock: Clock, now: datetime
) -> None:
    own = await people()
    await report_chest_pain(server, bearer(services, own.patient.actor, now), now)
    alert = await Alert.get(patient_id=own.patient.patient.id)
    acknowledge = "mutation Ack($id: ID!) { acknowledgeAlert(id: $id) { status acknowledgedAt } }"
    async with websocket(server) as ws:
        assert await ws.init({"authorization": f"Bearer {bearer(services, own.clinician.actor, now)}"}) == {
            "type": "connection_ack"
        }
        clock.now = now + timedelta(minutes=7)
        acknowledged = await ws.run("ack", acknowledge, {"id": str(alert.id)})
    assert acknowledged["payload"] == {
        "data": {"acknowledgeAlert": {"status": "ACKNOWLEDGED", "acknowledgedAt": "2026-11-26T12:07:00+00:00"}}
    }


async def test_admins_receive_escalations_of_their_own_clinic_on_alert_escalated(
    db: Database, services: Services, people: Callable[[], Awaitable[ClinicPeople]], clock: Clock, now: datetime
) -> None:
    ours, theirs = await people(), await people()
    app = escalating_after(db, clock, 5)
    server_services: Services = app.state.services
    async with (
        running(app) as server,
        subscribed(server, bearer(services, ours.admin.actor, now), ours.clinic.id, ALERT_ESCALATED) as insider,
        subscribed(server, bearer(services, theirs.admin.actor, now), theirs.clinic.id, ALERT_ESCALATED) as outsider,
    ):
        await report_chest_pain(server, bearer(services, ours.patient.actor, now), now)
        clock.now = now + timedelta(minutes=3)
        await report_chest_pain(server, bearer(services, theirs.patient.actor, now), clock.now)
        # Only ours is due at 12:06; theirs (raised at 12:03) at 12:09.
        clock.now = now + timedelta(minutes=6)
        await server_services.alerts.escalate(now=clock.now)
        ours_escalated = await insider.receive()
        clock.now = now + timedelta(minutes=9)
        await server_services.alerts.escalate(now=clock.now)
        theirs_escalated = await outsider.receive()
    ours_alert = await Alert.get(patient_id=ours.patient.patient.id)
    theirs_alert = await Alert.get(patient_id=theirs.patient.patient.id)
    # The first message on each: neither the raise nor the other clinic's escalation came before it.
    assert ours_escalated == {
        "id": "1",
        "type": "next",
        "payload": {"data": {"alertEscalated": expected_alert(ours_alert, escalated_at="2026-11-26T12:06:00+00:00")}},
    }
    assert theirs_escalated["payload"]["data"]["alertEscalated"]["id"] == str(theirs_alert.id)
    assert theirs_escalated["payload"]["data"]["alertEscalated"]["escalatedAt"] == "2026-11-26T12:09:00+00:00"
    assert await reads_of_alerts(ours.admin) == [(ours.patient.patient.id, ours_alert.id)]
    assert await reads_of_alerts(theirs.admin) == [(theirs.patient.patient.id, theirs_alert.id)]


# --- Refusals ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.PATIENT])
async def test_only_admins_may_subscribe_to_escalations(
    server: Server, services: Services, people: Callable[[], Awaitable[ClinicPeople]], now: datetime, role: Role
) -> None:
    own = await people()
    who = own.clinician.actor if role is Role.CLINICIAN else own.patient.actor
    async with websocket(server) as ws:
        assert await ws.init({"authorization": f"Bearer {bearer(services, who, now)}"}) == {"type": "connection_ack"}
        await ws.subscribe(query=ALERT_ESCALATED)
        refused = await ws.receive()
        completed = await ws.receive()
    assert refused["payload"]["data"] is None
    assert [e["extensions"]["code"] for e in refused["payload"]["errors"]] == ["FORBIDDEN"]
    assert completed == {"id": "1", "type": "complete"}
    assert server.broker.subscribers(own.clinic.id) == 0


async def test_a_connection_without_a_token_is_closed_before_any_operation(server: Server) -> None:
    async with websocket(server) as ws:
        await ws.send({"type": "connection_init"})
        assert await ws.close_code() == 4403


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer ", "", "EXPIRED", "WRONG_KEY", 42],
)
async def test_a_connection_with_a_bad_token_is_closed(
    server: Server,
    services: Services,
    people: Callable[[], Awaitable[ClinicPeople]],
    now: datetime,
    authorization: object,
) -> None:
    own = await people()
    if authorization == "EXPIRED":
        # Issued 16 minutes ago with a 15-minute lifetime.
        authorization = f"Bearer {bearer(services, own.clinician.actor, now - timedelta(minutes=16))}"
    elif authorization == "WRONG_KEY":
        forger = AccessTokens(secret_key="another-secret-key-that-is-long-enough-0123", ttl=timedelta(minutes=15))
        a = own.clinician.actor
        token, _ = forger.issue(
            account_id=own.clinician.account.id, role=a.role, clinic_id=a.clinic_id, patient_id=None, now=now
        )
        authorization = f"Bearer {token}"
    async with websocket(server) as ws:
        await ws.send({"type": "connection_init", "payload": {"authorization": authorization}})
        assert await ws.close_code() == 4403
    assert server.broker.subscribers(own.clinic.id) == 0


async def test_a_bad_token_in_connection_init_wins_over_a_good_header(
    server: Server, services: Services, people: Callable[[], Awaitable[ClinicPeople]], now: datetime
) -> None:
    own = await people()
    good = bearer(services, own.clinician.actor, now)
    async with websocket(server, {"Authorization": f"Bearer {good}"}) as ws:
        await ws.send({"type": "connection_init", "payload": {"authorization": "Bearer forged"}})
        assert await ws.close_code() == 4403


async def test_subscribing_before_connection_init_is_refused(server: Server) -> None:
    async with websocket(server) as ws:
        await ws.subscribe()
        assert await ws.close_code() == 4401


async def test_a_patient_is_refused_forbidden(
    server: Server, services: Services, people: Callable[[], Awaitable[ClinicPeople]], now: datetime
) -> None:
    own = await people()
    async with websocket(server) as ws:
        # Authenticated: a patient may connect (and query); subscribing to alerts is staff only.
        assert await ws.init({"authorization": f"Bearer {bearer(services, own.patient.actor, now)}"}) == {
            "type": "connection_ack"
        }
        await ws.subscribe()
        refused = await ws.receive()
        completed = await ws.receive()
    assert refused["type"] == "next"
    assert refused["payload"]["data"] is None
    assert [e["extensions"]["code"] for e in refused["payload"]["errors"]] == ["FORBIDDEN"]
    assert completed == {"id": "1", "type": "complete"}
    assert server.broker.subscribers(own.clinic.id) == 0


async def test_a_subscription_ends_unauthenticated_once_its_token_has_expired(
    server: Server, services: Services, people: Callable[[], Awaitable[ClinicPeople]], clock: Clock, now: datetime
) -> None:
    own = await people()
    # Issued 10 minutes ago: 5 minutes left.
    async with subscribed(
        server, bearer(services, own.clinician.actor, now - timedelta(minutes=10)), own.clinic.id
    ) as ws:
        clock.now = now + timedelta(minutes=5)
        await report_chest_pain(server, bearer(services, own.patient.actor, now), now)
        ended = await ws.receive()
        completed = await ws.receive()
        async with asyncio.timeout(WAIT):
            await server.broker.wait_subscribers(own.clinic.id, 0)
    assert ended["payload"]["data"] is None
    assert [e["extensions"]["code"] for e in ended["payload"]["errors"]] == ["UNAUTHENTICATED"]
    assert completed == {"id": "1", "type": "complete"}
    # Nothing was delivered, so nothing was read.
    assert await reads_of_alerts(own.clinician) == []


async def test_every_operation_on_the_connection_is_refused_once_its_token_has_expired(
    server: Server, services: Services, people: Callable[[], Awaitable[ClinicPeople]], clock: Clock, now: datetime
) -> None:
    own = await people()
    me = {"query": "{ me { id } }"}
    async with websocket(server) as ws:
        assert await ws.init({"authorization": f"Bearer {bearer(services, own.clinician.actor, now)}"}) == {
            "type": "connection_ack"
        }
        await ws.send({"id": "before", "type": "subscribe", "payload": me})
        answered, answered_done = await ws.receive(), await ws.receive()
        clock.now = now + timedelta(minutes=15)
        await ws.send({"id": "after", "type": "subscribe", "payload": me})
        refused, refused_done = await ws.receive(), await ws.receive()
    assert answered["payload"] == {"data": {"me": {"id": str(own.clinician.account.id)}}}
    assert answered_done == {"id": "before", "type": "complete"}
    assert refused["payload"]["data"] is None
    assert [e["extensions"]["code"] for e in refused["payload"]["errors"]] == ["UNAUTHENTICATED"]
    assert refused_done == {"id": "after", "type": "complete"}


# --- Clean-up ----------------------------------------------------------------------------------------------------


async def test_completing_or_disconnecting_ends_the_subscription_on_the_server(
    server: Server, services: Services, people: Callable[[], Awaitable[ClinicPeople]], now: datetime
) -> None:
    own = await people()
    token = bearer(services, own.clinician.actor, now)
    async with subscribed(server, token, own.clinic.id) as ws:
        await ws.send({"id": "1", "type": "complete"})
        async with asyncio.timeout(WAIT):
            await server.broker.wait_subscribers(own.clinic.id, 0)
    async with subscribed(server, token, own.clinic.id):
        assert server.broker.subscribers(own.clinic.id) == 1
    async with asyncio.timeout(WAIT):
        await server.broker.wait_subscribers(own.clinic.id, 0)


# --- Across replicas (PostgreSQL) ---------------------------------------------------------------------------------


@ON_POSTGRES
async def test_an_alert_raised_through_one_replica_reaches_a_subscriber_of_another(
    db: Database, services: Services, people: Callable[[], Awaitable[ClinicPeople]], clock: Clock, now: datetime
) -> None:
    own = await people()
    replica_a = create_app(make_settings(db.url), manage_orm=False, clock=clock)
    replica_b = create_app(make_settings(db.url), manage_orm=False, clock=clock)
    async with running(replica_a) as a, running(replica_b) as b:
        assert a.broker is not b.broker
        async with subscribed(b, bearer(services, own.clinician.actor, now), own.clinic.id) as ws:
            # Nobody subscribes on A: the notice can only reach B through PostgreSQL.
            assert a.broker.subscribers(own.clinic.id) == 0
            await report_chest_pain(a, bearer(services, own.patient.actor, now), now)
            message = await ws.receive()
    alert = await Alert.get(patient_id=own.patient.patient.id)
    assert message["payload"] == {"data": {"alertRaised": expected_alert(alert)}}
