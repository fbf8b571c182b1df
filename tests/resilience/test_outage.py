"""PostgreSQL going away under load: its sessions terminated, a write cut off mid-transaction, the network to it cut
for a while. Requests fail cleanly and promptly (UNAVAILABLE, retryable), /readyz says not ready, nothing is
half-written, and the same server process recovers by itself."""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from functools import partial
from pathlib import Path

import asyncpg
import pytest
from tortoise.context import TortoiseContext
from tortoise.exceptions import DBConnectionError, IntegrityError, OperationalError
from tortoise.transactions import in_transaction

from api.db import is_connection_failure, tortoise_config
from tests.resilience.conftest import Scratch
from tests.resilience.support import (
    RED_FLAG,
    Faults,
    Phone,
    Proxy,
    Server,
    check_exactly_once,
    diary,
    driving,
    events,
    failures,
    fleet,
    log_entry,
    progress,
    reproducible,
    serving,
    sign_in,
    stored_entries,
    terminate_backends,
    total,
    until,
)

# Fewer than the concurrency test's forty: the outage, not the volume, is under test here.
ENTRIES = 16
# How long a request may take while the database is out of reach: it fails fast, it does not hang.
PROMPT = 5.0
CLOSED = "cannot call Transaction.rollback(): the underlying connection is closed"
TERMINATED = "terminating connection due to administrator command"


def _during(outer: BaseException, inner: BaseException) -> BaseException:
    """`outer` as raised while handling `inner`: a rollback failing after its statement did."""
    outer.__context__ = inner
    return outer


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (asyncpg.AdminShutdownError(TERMINATED), True),
        (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"), True),
        (asyncpg.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), True),
        (asyncpg.InterfaceError(CLOSED), True),
        (asyncpg.InterfaceError("pool is closing"), True),
        (asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"), True),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"), True),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), True),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), True),
        (TimeoutError(), True),
        (DBConnectionError("Can't establish connection to database"), True),
        (_during(asyncpg.InterfaceError(CLOSED), asyncpg.AdminShutdownError(TERMINATED)), True),
        (_during(KeyError("x"), asyncpg.ConnectionDoesNotExistError("closed")), True),
        (asyncpg.UniqueViolationError("duplicate key value violates unique constraint"), False),
        (IntegrityError(asyncpg.UniqueViolationError("duplicate key")), False),
        (OperationalError(asyncpg.UndefinedColumnError("column does not exist")), False),
        (asyncpg.DeadlockDetectedError("deadlock detected"), False),
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), False),
        (asyncpg.InterfaceError("cannot perform operation: another operation is in progress"), False),
        (OSError(errno.ENOENT, "No such file or directory"), False),
        (ValueError("bad"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_connection_failures_are_told_from_statement_errors(error: BaseException, retryable: bool) -> None:
    assert is_connection_failure(error) is retryable


def test_a_connection_failure_is_found_behind_a_wrapper() -> None:
    def translated() -> None:
        try:
            raise asyncpg.AdminShutdownError(TERMINATED)
        except asyncpg.PostgresError as exc:
            raise OperationalError(exc) from exc

    with pytest.raises(OperationalError) as wrapped:
        translated()
    assert is_connection_failure(wrapped.value)


async def test_a_transaction_that_cannot_begin_gives_its_pooled_connection_back(scratch: Scratch) -> None:
    """BEGIN on a pooled connection the server has just ended fails; the pool must not lose that connection. Before
    api.db's PostgresClient, one or two rounds left a pool of two with none, and every later transaction waited
    forever."""
    admin = await asyncpg.connect(scratch.url)
    try:
        async with TortoiseContext() as ctx:
            await ctx.init(config=tortoise_config(f"{scratch.url}?maxsize=2"))
            failed = 0
            for _ in range(6):
                assert await _transactions(2) == ["ok", "ok"]  # both connections of the pool busy at once
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> $2",
                    scratch.name,
                    admin.get_server_pid(),
                )
                after = await _transactions(2)
                assert set(after) <= {"ok", "retryable"}, after
                failed += after.count("retryable")
            assert await _transactions(2) == ["ok", "ok"]
    finally:
        await admin.close()
    assert failed > 0  # the ended connections were used, not quietly replaced first


async def test_terminated_sessions_fail_requests_cleanly_and_the_pool_recovers(
    scratch: Scratch, tmp_path: Path
) -> None:
    async with serving(scratch.url, tmp_path) as server:
        phones = fleet(scratch.phones, server.base_url, Faults(outage=True), entries=ENTRIES, seed=2, within=120)
        terminated = []
        async with driving(phones) as load:
            # Three times while the phones write: every pooled connection, busy or idle, and the alert listener.
            for share in (0.2, 0.45, 0.7):
                await until(partial(progress, phones, share), within=60, what=f"{share:.0%} acknowledged")
                terminated.append(await terminate_backends(scratch.name))
            await asyncio.wait_for(load, timeout=120)
        assert await server.ready()
        assert server.starts == 1  # recovered without a restart
    assert min(terminated) > 0
    assert total(phones, "unavailable") > 0  # the cuts were felt, and answered as retryable
    assert await check_exactly_once(scratch.url, phones) == []
    assert failures(server) == []
    _assert_logged_by_class_only(server)


async def test_a_write_cut_off_mid_transaction_leaves_nothing_behind(scratch: Scratch, tmp_path: Path) -> None:
    """The entry's row is inserted, then its transaction waits on a lock we hold before it raises the entry's alert;
    its session is ended there. Nothing of it remains, and the phone's resend stores it once, alert and all."""
    rng = reproducible(7)
    entry = {**diary(rng, 1)[0], "sideEffects": [RED_FLAG]}
    async with serving(scratch.url, tmp_path) as server:
        token = await sign_in(server.base_url, scratch.phones[0].email)
        holder = await asyncpg.connect(scratch.url)
        try:
            async with holder.transaction():
                await holder.execute("LOCK TABLE alert IN ACCESS EXCLUSIVE MODE")
                request = asyncio.create_task(log_entry(server.base_url, token, entry))
                await holder.execute("SELECT pg_terminate_backend($1)", await _blocked_writer(holder, scratch.name))
                cut_off = await asyncio.wait_for(request, timeout=PROMPT)
        finally:
            await holder.close()
        assert [(e["code"], e["retryable"]) for e in cut_off.errors] == [("UNAVAILABLE", True)]
        assert [r for r in await stored_entries(scratch.url) if r.client_id == entry["clientId"]] == []

        phone = Phone(scratch.phones[0], server.base_url, rng, Faults(0, 0, 0), [entry], time.monotonic() + 30)
        await phone.run()
    assert len(phone.acked) == 1
    # Stored once as acknowledged, its alert with it (no trigger without its entry, no red flag without its alert).
    assert await check_exactly_once(scratch.url, [phone]) == []
    assert failures(server) == []


async def test_a_database_outage_answers_unavailable_and_recovers_without_a_restart(
    scratch: Scratch, tmp_path: Path
) -> None:
    proxy = Proxy()
    await proxy.start()
    try:
        async with serving(proxy.url(scratch.name), tmp_path) as server:
            token = await sign_in(server.base_url, scratch.phones[0].email)
            phones = fleet(scratch.phones, server.base_url, Faults(outage=True), entries=ENTRIES, seed=4, within=120)
            async with driving(phones) as load:
                await until(lambda: progress(phones, 0.3), within=60, what="30% acknowledged")

                await proxy.cut()
                await until(lambda: _answers(server, 503), within=2 * PROMPT, what="/readyz answering 503")
                frozen = len(await stored_entries(scratch.url))
                probe = await log_entry(server.base_url, token, diary(reproducible(99), 1)[0])
                assert [(e["code"], e["retryable"]) for e in probe.errors] == [("UNAVAILABLE", True)]
                assert probe.seconds < PROMPT
                told = total(phones, "unavailable") + 50
                await until(lambda: _unavailable(phones, told), within=2 * PROMPT, what="phones told UNAVAILABLE")
                assert len(await stored_entries(scratch.url)) == frozen  # nothing reaches the database meanwhile

                await proxy.restore()
                await until(server.ready, within=30, what="/readyz back to 200")
                await asyncio.wait_for(load, timeout=120)
            assert server.starts == 1  # recovered without a restart
            assert server.alive
    finally:
        await proxy.close()
    assert await check_exactly_once(scratch.url, phones) == []
    assert failures(server) == []
    assert events(server, "readyz.database_unreachable")
    _assert_logged_by_class_only(server)


async def _transactions(count: int) -> list[str]:
    """`count` transactions at once, each in its own task as requests are: "ok", "retryable" or what went wrong."""

    async def one() -> str:
        try:
            async with asyncio.timeout(PROMPT):
                async with in_transaction() as conn:
                    await conn.execute_query("SELECT pg_sleep(0.02)")
        except TimeoutError:
            return "hung"
        except Exception as exc:
            return "retryable" if is_connection_failure(exc) else repr(exc)
        return "ok"

    return list(await asyncio.gather(*(asyncio.create_task(one()) for _ in range(count))))


async def _answers(server: Server, status: int) -> bool:
    return await server.readiness() == status


async def _unavailable(phones: list[Phone], count: int) -> bool:
    return total(phones, "unavailable") >= count


async def _blocked_writer(conn: asyncpg.Connection, database: str) -> int:
    """The server's session once it waits on our lock, with the entry inserted and not committed."""
    waiting = "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND pid <> $2"
    found: list[int] = []

    async def blocked() -> bool:
        found[:] = [r["pid"] for r in await conn.fetch(waiting, database, conn.get_server_pid())]
        return bool(found)

    await until(blocked, within=10, what="the write waiting on the alert table")
    assert len(found) == 1
    # The INSERT is done in that transaction: it holds the lock an INSERT takes on diary_entry.
    inserted = (
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "WHERE l.pid = $1 AND c.relname = 'diary_entry' AND l.mode = 'RowExclusiveLock' AND l.granted"
    )
    assert await conn.fetchval(inserted, found[0]) == 1
    return found[0]


def _assert_logged_by_class_only(server: Server) -> None:
    # Driver messages may quote the URL or the statement's values: the log names the exception's class only.
    logged = events(server, "graphql.database_unavailable")
    assert logged
    assert all(set(e) == {"time", "level", "logger", "event", "request_id", "error"} for e in logged)
