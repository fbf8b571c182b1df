"""Alert brokers: fan-out per clinic in one process, and across processes through PostgreSQL LISTEN/NOTIFY.

The PostgreSQL tests run two brokers on one database, as two API replicas would, each with its own listening
connection, on a channel of their own so that nothing else on the server can interfere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import ClassVar
from uuid import UUID, uuid4

import asyncpg
import pytest
import pytest_asyncio

from api.container import build_broker
from api.domain.alert.broker import QUEUE_SIZE, AlertNotice, LocalBroker, NoticeKind
from api.domain.alert.pg_broker import Connect, PostgresBroker, connector, decode, encode
from tests.conftest import Database, make_settings

# Generous: a notice normally arrives in milliseconds. Reaching it is a failure, never a wait.
WAIT = 10
CLINIC_A = UUID("00000000-0000-4000-8000-00000000000a")
CLINIC_B = UUID("00000000-0000-4000-8000-00000000000b")
ON_POSTGRES = pytest.mark.parametrize("database", ["postgres"], indirect=True)


async def received(notices: AsyncIterator[AlertNotice]) -> AlertNotice:
    async with asyncio.timeout(WAIT):
        return await anext(notices)


def notice(clinic_id: UUID, kind: NoticeKind = NoticeKind.RAISED) -> AlertNotice:
    return AlertNotice(uuid4(), clinic_id, kind)


def messages(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == name]


def extra(record: logging.LogRecord, key: str) -> object:
    """A field passed to the log call in `extra`."""
    return record.__dict__[key]


# --- LocalBroker -------------------------------------------------------------------------------------------------


async def test_local_broker_delivers_to_every_subscriber_of_the_clinic_and_no_other() -> None:
    broker = LocalBroker()
    for_a, for_b, again_a = notice(CLINIC_A), notice(CLINIC_B, NoticeKind.ESCALATED), notice(CLINIC_A)
    async with (
        broker.subscribe(CLINIC_A) as first,
        broker.subscribe(CLINIC_A) as second,
        broker.subscribe(CLINIC_B) as other,
    ):
        await broker.publish(for_a)
        await broker.publish(for_b)
        await broker.publish(again_a)
        assert [await received(first), await received(first)] == [for_a, again_a]
        assert [await received(second), await received(second)] == [for_a, again_a]
        # B's first notice is its own clinic's: neither of A's reached it.
        assert await received(other) == for_b


async def test_local_broker_forgets_a_subscription_when_it_ends() -> None:
    broker = LocalBroker()
    waiting = asyncio.create_task(broker.wait_subscribers(CLINIC_A, 2))
    async with broker.subscribe(CLINIC_A) as kept:
        assert broker.subscribers(CLINIC_A) == 1
        assert not waiting.done()
        async with broker.subscribe(CLINIC_A):
            async with asyncio.timeout(WAIT):
                await waiting
            assert broker.subscribers(CLINIC_A) == 2
        assert broker.subscribers(CLINIC_A) == 1
        later = notice(CLINIC_A)
        await broker.publish(later)
        assert await received(kept) == later
    async with asyncio.timeout(WAIT):
        await broker.wait_subscribers(CLINIC_A, 0)
    assert broker.subscribers(CLINIC_A) == 0
    # Publishing to a clinic nobody listens to is fine, and a new subscription starts empty.
    await broker.publish(notice(CLINIC_A))
    async with broker.subscribe(CLINIC_A) as fresh:
        newest = notice(CLINIC_A)
        await broker.publish(newest)
        assert await received(fresh) == newest


async def test_a_subscriber_that_stops_reading_loses_the_overflow_not_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = LocalBroker()
    sent = [notice(CLINIC_A) for _ in range(QUEUE_SIZE + 1)]
    async with broker.subscribe(CLINIC_A) as slow:
        for n in sent:
            await broker.publish(n)
        assert [await received(slow) for _ in range(QUEUE_SIZE)] == sent[:QUEUE_SIZE]
        lagging = messages(caplog, "alert.subscriber_lagging")
        assert [extra(r, "alert_id") for r in lagging] == [str(sent[-1].alert_id)]
        # Room again: the next notice arrives, the dropped one never does.
        after = notice(CLINIC_A)
        await broker.publish(after)
        assert await received(slow) == after


# --- The NOTIFY payload ------------------------------------------------------------------------------------------


def test_the_payload_carries_ids_and_kind_only() -> None:
    n = AlertNotice(
        UUID("11111111-1111-4111-8111-111111111111"), UUID("22222222-2222-4222-8222-222222222222"), NoticeKind.ESCALATED
    )
    assert json.loads(encode(n)) == {
        "alert": "11111111-1111-4111-8111-111111111111",
        "clinic": "22222222-2222-4222-8222-222222222222",
        "kind": "ESCALATED",
    }
    assert decode(encode(n)) == n


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "{}",
        '{"alert": "x", "clinic": "y", "kind": "RAISED"}',
        '["a"]',
        json.dumps({"alert": str(uuid4()), "clinic": str(uuid4()), "kind": "DELETED"}),
    ],
)
def test_a_payload_this_module_did_not_write_is_refused(payload: str) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        decode(payload)


# --- PostgresBroker ----------------------------------------------------------------------------------------------


@pytest.fixture
def channel() -> str:
    return f"interlude_alerts_test_{secrets.token_hex(4)}"


@pytest_asyncio.fixture
async def replicas(database: Database, channel: str) -> AsyncIterator[tuple[PostgresBroker, PostgresBroker]]:
    first = PostgresBroker.from_url(database.url, channel=channel)
    second = PostgresBroker.from_url(database.url, channel=channel)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def terminate_backend(database: Database, pid: int) -> None:
    """From a connection of the test's own: ends exactly the backend the broker listens on."""
    conn = await connector(database.url)()
    try:
        # The second argument (milliseconds) makes PostgreSQL wait until the backend has exited.
        assert await conn.fetchval("SELECT pg_terminate_backend($1, 5000)", pid) is True
    finally:
        await conn.close()


@ON_POSTGRES
async def test_a_notice_published_on_one_replica_reaches_subscribers_on_every_replica(
    replicas: tuple[PostgresBroker, PostgresBroker],
) -> None:
    a, b = replicas
    async with b.subscribe(CLINIC_A) as on_b, a.subscribe(CLINIC_A) as on_a, b.subscribe(CLINIC_B) as other:
        raised = notice(CLINIC_A)
        await a.publish(raised)
        assert await received(on_b) == raised
        # The publishing replica's own subscribers hear it the same way.
        assert await received(on_a) == raised
        escalated = notice(CLINIC_B, NoticeKind.ESCALATED)
        await a.publish(escalated)
        # Clinic B's subscriber's first notice is its own: clinic A's never reached it.
        assert await received(other) == escalated
    assert (a.subscribers(CLINIC_A), b.subscribers(CLINIC_A), b.subscribers(CLINIC_B)) == (0, 0, 0)


@ON_POSTGRES
async def test_each_replica_listens_on_one_connection_of_its_own(
    replicas: tuple[PostgresBroker, PostgresBroker],
) -> None:
    a, b = replicas
    async with a.subscribe(CLINIC_A), a.subscribe(CLINIC_B):
        first = await a.listening()
        await a.publish(notice(CLINIC_A))
        assert await a.listening() == first
    assert await b.listening() != first


@ON_POSTGRES
async def test_a_payload_from_someone_else_is_ignored_and_not_logged(
    database: Database, replicas: tuple[PostgresBroker, PostgresBroker], channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = replicas
    async with b.subscribe(CLINIC_A) as on_b:
        conn = await connector(database.url)()
        try:
            await conn.execute("SELECT pg_notify($1, $2)", channel, "patient 7 reports chest pain")
        finally:
            await conn.close()
        valid = notice(CLINIC_A)
        await a.publish(valid)
        assert await received(on_b) == valid
    assert len(messages(caplog, "alert.notice_malformed")) == 1
    assert "chest pain" not in caplog.text


@ON_POSTGRES
async def test_the_listener_reconnects_after_its_backend_is_terminated(
    database: Database, replicas: tuple[PostgresBroker, PostgresBroker], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = replicas
    async with b.subscribe(CLINIC_A) as on_b:
        before = notice(CLINIC_A)
        await a.publish(before)
        assert await received(on_b) == before
        lost = await b.listening()
        await terminate_backend(database, lost)
        async with asyncio.timeout(WAIT):
            replaced = await b.listening(not_pid=lost)
        assert replaced != lost
        # The subscription survived the lost connection: a later notice still reaches it.
        after = notice(CLINIC_A)
        await a.publish(after)
        assert await received(on_b) == after
    assert len(messages(caplog, "alert.listener_lost")) == 1


@ON_POSTGRES
async def test_a_publisher_whose_connection_was_just_terminated_still_delivers(
    database: Database, replicas: tuple[PostgresBroker, PostgresBroker], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = replicas
    async with b.subscribe(CLINIC_A) as on_b:
        lost = await a.listening()
        await terminate_backend(database, lost)
        # No waiting for `a` to notice: its publish meets the dead connection, or the new one.
        sent = notice(CLINIC_A)
        await a.publish(sent)
        assert await received(on_b) == sent
        assert await a.listening() != lost
    assert messages(caplog, "alert.notify_failed") == []


def gated(connect: Callable[[], Awaitable[asyncpg.Connection]], gate: asyncio.Event) -> Connect:
    """Connections that cannot be opened until the test opens `gate`, as while the database is unreachable."""

    async def connect_when_open() -> asyncpg.Connection:
        await gate.wait()
        return await connect()

    return connect_when_open


async def test_publish_returns_at_once_while_the_database_is_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    attempted, reachable = asyncio.Event(), asyncio.Event()

    async def unreachable() -> asyncpg.Connection:
        attempted.set()
        await reachable.wait()  # never set: the connection attempt hangs, as on a dropped network
        raise AssertionError("unreachable")

    broker = PostgresBroker(unreachable, drain_timeout=0)
    try:
        lost = notice(CLINIC_A)
        # The write that raised the alert must not wait for the database: the call is done while the connection
        # attempt is still hanging.
        async with asyncio.timeout(WAIT):
            await broker.publish(lost)
        assert not reachable.is_set()
        assert broker.pending() == 1
        async with asyncio.timeout(WAIT):
            await attempted.wait()
    finally:
        await broker.close()
    # Given up at shutdown (no time allowed to drain), and said so without any detail of the database.
    assert broker.pending() == 0
    [failed] = messages(caplog, "alert.notify_failed")
    assert (extra(failed, "alert_id"), extra(failed, "error")) == (str(lost.alert_id), "Cancelled")


async def test_a_notice_that_cannot_go_out_in_time_is_dropped_and_logged_without_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempted = asyncio.Event()

    async def unreachable() -> asyncpg.Connection:
        attempted.set()
        raise OSError("could not connect to db.internal as interlude_admin")

    broker = PostgresBroker(unreachable, publish_timeout=0)
    try:
        lost = notice(CLINIC_A)
        await broker.publish(lost)
        async with asyncio.timeout(WAIT):
            await attempted.wait()
    finally:
        await broker.close()
    [failed] = messages(caplog, "alert.notify_failed")
    assert (extra(failed, "alert_id"), extra(failed, "error")) == (str(lost.alert_id), "TimeoutError")
    assert [extra(r, "error") for r in messages(caplog, "alert.listener_unavailable")][:1] == ["OSError"]
    assert "db.internal" not in caplog.text
    assert "interlude_admin" not in caplog.text


async def test_a_closing_broker_refuses_new_notices(caplog: pytest.LogCaptureFixture) -> None:
    async def never() -> asyncpg.Connection:
        raise AssertionError("nothing to send: no connection")

    broker = PostgresBroker(never)
    await broker.close()
    late = notice(CLINIC_A)
    await broker.publish(late)
    assert broker.pending() == 0
    [failed] = messages(caplog, "alert.notify_failed")
    assert (extra(failed, "alert_id"), extra(failed, "error")) == (str(late.alert_id), "BrokerClosed")


@ON_POSTGRES
async def test_a_notice_published_while_the_database_is_unreachable_goes_out_once_it_is_back(
    database: Database, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    reachable = asyncio.Event()
    publisher = PostgresBroker(gated(connector(database.url), reachable), channel=channel)
    listener = PostgresBroker.from_url(database.url, channel=channel)
    try:
        async with listener.subscribe(CLINIC_A) as notices:
            sent = notice(CLINIC_A)
            async with asyncio.timeout(WAIT):
                await publisher.publish(sent)
            assert publisher.pending() == 1
            reachable.set()
            assert await received(notices) == sent
    finally:
        await publisher.close()
        await listener.close()
    assert messages(caplog, "alert.notify_failed") == []


@ON_POSTGRES
async def test_close_lets_pending_notices_go_out_first(
    database: Database, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    reachable = asyncio.Event()
    publisher = PostgresBroker(gated(connector(database.url), reachable), channel=channel)
    listener = PostgresBroker.from_url(database.url, channel=channel)
    try:
        async with listener.subscribe(CLINIC_A) as notices:
            sent = notice(CLINIC_A)
            await publisher.publish(sent)
            reachable.set()
            # Not a single NOTIFY has been sent yet (the connection is still to be opened): closing now sends it,
            # as a jobs process that stops right after its escalation pass must.
            async with asyncio.timeout(WAIT):
                await publisher.close()
            assert publisher.pending() == 0
            assert await received(notices) == sent
    finally:
        await publisher.close()
        await listener.close()
    assert messages(caplog, "alert.notify_failed") == []


async def test_a_closed_broker_refuses_new_subscriptions() -> None:
    async def never() -> asyncpg.Connection:
        raise AssertionError("a closed broker must not connect")

    broker = PostgresBroker(never)
    await broker.close()
    with pytest.raises(RuntimeError):
        async with broker.subscribe(CLINIC_A):
            pass


class Flaky(asyncpg.Connection):  # type: ignore[misc]
    """A connection whose first statement starting with `fails_on` (first in the whole test) meets a dropped
    socket, as after a network cut that the driver has not noticed."""

    fails_on: ClassVar[str]
    failed: ClassVar[list[int]]
    has_failed: ClassVar[asyncio.Event]

    async def execute(self, query: str, *args: object) -> str:
        cls = type(self)
        if query.startswith(cls.fails_on) and not cls.failed:
            cls.failed.append(self.get_server_pid())
            cls.has_failed.set()
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        result: str = await super().execute(query, *args)
        return result


class NotifyFails(Flaky):
    fails_on = "SELECT pg_notify"
    failed: ClassVar[list[int]] = []
    has_failed: ClassVar[asyncio.Event]


class ProbeFails(Flaky):
    fails_on = "SELECT 1"
    failed: ClassVar[list[int]] = []
    has_failed: ClassVar[asyncio.Event]


@ON_POSTGRES
async def test_a_publish_that_meets_a_dead_connection_is_sent_again_on_a_new_one(
    database: Database, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    NotifyFails.failed.clear()
    NotifyFails.has_failed = asyncio.Event()

    async def flaky() -> asyncpg.Connection:
        return await asyncpg.connect(database.url, connection_class=NotifyFails)

    publisher = PostgresBroker(flaky, channel=channel)
    listener = PostgresBroker.from_url(database.url, channel=channel)
    try:
        async with listener.subscribe(CLINIC_A) as notices:
            sent = notice(CLINIC_A)
            await publisher.publish(sent)
            assert await received(notices) == sent
            assert len(NotifyFails.failed) == 1
            # The suspect connection was dropped and replaced before the second try.
            assert await publisher.listening() != NotifyFails.failed[0]
    finally:
        await publisher.close()
        await listener.close()
    assert messages(caplog, "alert.notify_failed") == []


@ON_POSTGRES
async def test_an_idle_connection_that_no_longer_answers_is_replaced(
    database: Database, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    ProbeFails.failed.clear()
    ProbeFails.has_failed = asyncio.Event()

    async def flaky() -> asyncpg.Connection:
        return await asyncpg.connect(database.url, connection_class=ProbeFails)

    # Probed as often as possible: the first probe fails, the next ones (on the new connection) answer.
    listener = PostgresBroker(flaky, channel=channel, probe_interval=0)
    publisher = PostgresBroker.from_url(database.url, channel=channel)
    try:
        async with listener.subscribe(CLINIC_A) as notices:
            async with asyncio.timeout(WAIT):
                await ProbeFails.has_failed.wait()
                [dead] = ProbeFails.failed
                replaced = await listener.listening(not_pid=dead)
            assert replaced != dead
            sent = notice(CLINIC_A)
            await publisher.publish(sent)
            assert await received(notices) == sent
    finally:
        await publisher.close()
        await listener.close()
    assert len(messages(caplog, "alert.listener_lost")) == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite://:memory:", LocalBroker),
        ("sqlite:///var/lib/interlude.db", LocalBroker),
        ("postgres://interlude@db:5432/interlude", PostgresBroker),
        ("postgresql://interlude@db/interlude?maxsize=5", PostgresBroker),
        ("asyncpg://interlude@db/interlude", PostgresBroker),
    ],
)
async def test_the_broker_follows_the_database(url: str, expected: type) -> None:
    broker = build_broker(make_settings(url))
    try:
        assert type(broker) is expected
    finally:
        await broker.close()


@ON_POSTGRES
async def test_the_listening_connection_takes_the_credentials_but_not_the_pool_options(database: Database) -> None:
    # asyncpg would send unknown URL parameters to the server as settings, which it refuses.
    conn = await connector(f"{database.url}?minsize=1&maxsize=3")()
    try:
        assert await conn.fetchval("SELECT current_database()") == database.url.rsplit("/", 1)[1]
    finally:
        await conn.close()
