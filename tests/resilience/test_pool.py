"""Pooled PostgreSQL connections go back to the pool without asyncpg's reset statement (api/db.py
`PooledConnection`), which is safe only while nothing leaves session state on them, and without a task of their own
when nothing needs waiting for (`GivingBackPool`), still shielded from cancellation when something does; and to the
requests waiting for one in the order they asked (`FairHolderQueue`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from tortoise.connection import connections
from tortoise.context import TortoiseContext

from api.db import _POOL_DEFAULTS, GivingBackPool, PooledConnection, tortoise_config
from tests.pg_session import session_state_left
from tests.resilience.conftest import Scratch

ROOT = Path(__file__).resolve().parents[2]
# Statements that leave state on a session, which the reset statement would have cleared: a session setting (not
# `SET LOCAL`, which ends with its transaction; not an UPDATE's SET, preceded by a table name), a role, a setting
# through set_config(…, false), an advisory lock, a cursor, LISTEN. This finds them in code the suite may not run;
# tests/pg_session.py finds what the suite's own workload leaves, on the server.
SESSION_STATE = re.compile(
    r"""["'(]\s*SET\s+(?!LOCAL\b)(SESSION\s+)?([a-z_.]+\s*(=|TO\b)|ROLE\b|TIME\s+ZONE\b|AUTHORIZATION\b)|"""
    r"""set_config\([^)]*,\s*false\s*\)|pg_advisory_lock|pg_try_advisory_lock|"""
    r"""\bDECLARE\s+\w+\s+.*CURSOR\b|["']\s*LISTEN\b|\.add_listener\(""",
    re.IGNORECASE,
)
# The alert broker's LISTEN is on a connection it opens itself, outside the pool.
OWN_CONNECTION = {"api/domain/alert/pg_broker.py"}


async def test_a_pooled_connection_goes_back_without_a_reset_statement(scratch: Scratch) -> None:
    async with pool_of_one(scratch) as pool:
        sent: list[str] = []
        async with pool.acquire() as conn:
            assert type(conn._con) is PooledConnection
            conn.add_query_logger(lambda record: sent.append(record.query))
            await conn.fetchval("SELECT 1")
        # The one connection of the pool, given back and taken again.
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 2")
        await asyncio.sleep(0)  # asyncpg calls query loggers with `call_soon`: one turn of the loop, no waiting
        assert sent == ["SELECT 1", "SELECT 2"]


async def test_a_transaction_left_open_is_still_rolled_back_on_release(scratch: Scratch) -> None:
    async with pool_of_one(scratch) as pool:
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("CREATE TABLE left_open (id int)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            with_table = await conn.fetchval("SELECT to_regclass('left_open')")
        assert with_table is None


async def test_a_release_arms_no_timer_unless_given_a_time_limit(
    scratch: Scratch, monkeypatch: pytest.MonkeyPatch
) -> None:
    armed: list[float | None] = []
    timeout = asyncpg.connection.compat.timeout

    def counting(delay: float | None) -> Any:
        armed.append(delay)
        return timeout(delay)

    async with pool_of_one(scratch) as pool:
        monkeypatch.setattr(asyncpg.connection.compat, "timeout", counting)  # connecting arms one: not counted
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("CREATE TABLE left_open (id int)")
        assert armed == []
        # With a time limit, asyncpg's own reset, under its timer: a transaction left open is rolled back too.
        conn = await pool.acquire()
        await conn.execute("BEGIN")
        await conn.execute("CREATE TABLE left_open_too (id int)")
        await pool.release(conn, timeout=5)
        assert armed == [5]
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            gone = await conn.fetchval(
                "SELECT to_regclass('left_open') IS NULL AND to_regclass('left_open_too') IS NULL"
            )
        assert gone is True


async def test_a_reset_statement_once_set_is_sent_on_every_release(
    scratch: Scratch, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `PooledConnection.reset` skips asyncpg's own reset only while there is no statement to send.
    async with pool_of_one(scratch) as pool:
        monkeypatch.setattr(PooledConnection, "get_reset_query", lambda _: "SELECT 'reset'")
        sent: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: sent.append(record.query))
            await conn.fetchval("SELECT 1")
        await asyncio.sleep(0)  # query loggers are called with `call_soon`: one turn of the loop, no waiting
        assert sent == ["SELECT 1", "SELECT 'reset'"]


@contextmanager
def counted_tasks() -> Iterator[list[Coroutine[Any, Any, Any]]]:
    """The coroutines of the tasks made on this loop meanwhile."""
    loop = asyncio.get_running_loop()
    made: list[Coroutine[Any, Any, Any]] = []
    factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        made.append(coro)
        return factory(loop, coro, **kwargs) if factory is not None else asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        yield made
    finally:
        loop.set_task_factory(factory)


async def test_a_connection_goes_back_without_a_task_when_nothing_needs_waiting_for(scratch: Scratch) -> None:
    async with pool_of_one(scratch) as pool:
        assert type(pool) is GivingBackPool
        conn = await pool.acquire()
        await conn.fetchval("SELECT 1")
        with counted_tasks() as made:
            await pool.release(conn)
        assert made == []
        assert pool.get_idle_size() == 1
        # Through Tortoise, as every statement outside a transaction goes.
        with counted_tasks() as made:
            assert await connections.get("default").execute_query_dict("SELECT 2 AS two") == [{"two": 2}]
        assert made == []
        # With a release timeout, asyncpg's own shielded release: a task.
        conn = await pool.acquire(timeout=5)
        with counted_tasks() as made:
            await pool.release(conn)
        assert len(made) == 1
        assert pool.get_idle_size() == 1


async def test_a_connection_of_another_pool_is_refused_as_asyncpg_refuses_it(scratch: Scratch) -> None:
    async with pool_of_one(scratch) as pool:
        other = await asyncpg.create_pool(scratch.url, min_size=1, max_size=1)
        try:
            foreign = await other.acquire()
            with pytest.raises(asyncpg.InterfaceError, match="is not a member of this pool"):
                await pool.release(foreign)
            await other.release(foreign)
            assert pool.get_idle_size() == 1  # its own connection untouched
        finally:
            await other.close()


async def test_a_connection_given_back_goes_to_the_request_waiting_for_it_first(scratch: Scratch) -> None:
    async with pool_of_one(scratch) as pool:
        order: list[str] = []
        held = await pool.acquire()

        async def waiting() -> None:
            conn = await pool.acquire()
            order.append("the request that waited")
            await pool.release(conn)

        waiter = asyncio.ensure_future(waiting())
        await asyncio.sleep(0)  # one turn of the loop: it asks for the pool's one connection, and waits
        await pool.release(held)
        again = await pool.acquire()  # the next statement of the request that gave it back
        order.append("the request that gave it back")
        await pool.release(again)
        await waiter
        assert order == ["the request that waited", "the request that gave it back"]


async def test_requests_waiting_for_a_connection_get_it_in_the_order_they_asked(scratch: Scratch) -> None:
    # asyncio's own queue left a connection given back in the queue until the first waiting request ran: whoever
    # asked meanwhile took it, and the request it was meant for waited again, at the back of the line.
    async with pool_of_one(scratch) as pool:
        order: list[str] = []
        held = await pool.acquire()

        async def request(name: str) -> None:
            conn = await pool.acquire()
            order.append(name)
            await pool.release(conn)

        waiting = [asyncio.ensure_future(request(f"waited {i}")) for i in range(3)]
        await asyncio.sleep(0)  # one turn of the loop: each asks for the pool's one connection, and waits
        await pool.release(held)
        async with asyncio.timeout(10):
            await request("gave it back, then asked again")  # before any of those waiting has run
            await asyncio.gather(*waiting)
        assert order == ["waited 0", "waited 1", "waited 2", "gave it back, then asked again"]
        assert pool.get_idle_size() == 1


async def test_a_connection_handed_to_a_request_cancelled_meanwhile_goes_to_the_next(scratch: Scratch) -> None:
    async with pool_of_one(scratch) as pool:
        held = await pool.acquire()
        first, second = asyncio.ensure_future(pool.acquire()), asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0)  # both wait
        await pool.release(held)  # the first's, which has not run yet
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        async with asyncio.timeout(10):
            conn = await second
        await pool.release(conn)
        assert pool.get_idle_size() == 1


async def test_a_request_cancelled_while_waiting_takes_no_connection_with_it(scratch: Scratch) -> None:
    async with pool_of_one(scratch) as pool:
        held = await pool.acquire()
        gone = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0)  # it waits
        gone.cancel()
        await pool.release(held)  # before the cancelled request has run: it is still in line, and passed over
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert pool.get_idle_size() == 1
        async with asyncio.timeout(10):
            again = await pool.acquire()
        await pool.release(again)


async def test_a_pool_whose_queue_is_not_the_one_expected_is_refused(
    scratch: Scratch, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A later asyncpg keeping its idle connections otherwise: the pool refuses to start rather than silently lose
    # the order of those waiting.
    class Elsewhere(asyncpg.pool._PoolConnectionHolderQueue):  # type: ignore[misc]  # asyncpg ships no type hints
        pass

    monkeypatch.setattr(asyncpg.pool, "_PoolConnectionHolderQueue", Elsewhere)
    pool = GivingBackPool(scratch.url, **{**_POOL_DEFAULTS, "min_size": 0, "max_size": 1})
    with pytest.raises(TypeError, match="Elsewhere"):
        await pool


async def test_a_release_that_must_wait_still_completes_when_its_caller_is_cancelled(scratch: Scratch) -> None:
    async with pool_of_one(scratch) as pool:
        conn = await pool.acquire()
        await conn.execute("BEGIN")
        await conn.execute("CREATE TABLE left_open (id int)")
        with counted_tasks() as made:
            releasing = asyncio.ensure_future(pool.release(conn))
            await asyncio.sleep(0)  # one turn of the loop: the release sent its ROLLBACK and waits for it
            assert not releasing.done()
            releasing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await releasing
        assert len(made) == 2  # the caller's, and the shielded rest of the release
        async with asyncio.timeout(10):
            again = await pool.acquire()  # the pool's one connection, back
        try:
            assert not again.is_in_transaction()
            assert await again.fetchval("SELECT to_regclass('left_open')") is None
        finally:
            await pool.release(again)


@asynccontextmanager
async def pool_of_one(scratch: Scratch) -> AsyncIterator[asyncpg.Pool]:
    """The pool Tortoise opens for `interlude serve`'s URL, with one connection."""
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(f"{scratch.url}?maxsize=1"))
        client = connections.get("default")
        await client.execute_query("SELECT 0")  # Tortoise opens its pool on first use
        yield client._pool


def test_no_code_leaves_session_state_on_a_pooled_connection() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)!r}"
        for folder in ("api", "jobs", "schema", "migrations")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in OWN_CONNECTION
        for match in SESSION_STATE.finditer(path.read_text())
    ]
    assert found == []


def test_the_session_state_pattern_finds_what_it_is_for() -> None:
    statements = [
        "conn.execute('SET statement_timeout = 0')",
        'db.execute_query("SET SESSION search_path TO x")',
        "'SELECT pg_advisory_lock(1)'",
        '"DECLARE c NO SCROLL CURSOR FOR SELECT 1"',
        "conn.execute('LISTEN alerts')",
        "await conn.add_listener(channel, callback)",
        "conn.execute('SET ROLE clinic_reader')",
        'f"SET TIME ZONE {zone!r}"',
        "'SET SESSION AUTHORIZATION other'",
        "\"SELECT set_config('search_path', 'x', false)\"",
    ]
    harmless = [
        "'SET LOCAL lock_timeout = 1'",
        '"UPDATE prompt SET status = $1"',
        "# set to 3",
        "\"SELECT set_config('lock_timeout', '1s', true)\"",
    ]
    assert [s for s in statements if not SESSION_STATE.search(s)] == []
    assert [s for s in harmless if SESSION_STATE.search(s)] == []


async def test_what_a_connection_keeps_is_read_off_the_server(scratch: Scratch) -> None:
    async with pool_of_one(scratch) as pool:
        assert await session_state_left(pool) == []
        left = [
            ("SET statement_timeout = 1000", "a session setting: statement_timeout"),
            ("LISTEN alerts", "LISTEN"),
            ("SELECT pg_advisory_lock(7)", "an advisory lock"),
            ("DECLARE kept CURSOR WITH HOLD FOR SELECT 1", "a cursor"),
            ("SET ROLE pg_read_all_data", "a role other than the session's"),
        ]
        for statement, found in left:
            async with pool.acquire() as conn:
                await conn.execute(statement)
            assert await session_state_left(pool) == [found], statement
            async with pool.acquire() as conn:
                await conn.execute("SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL; RESET ROLE")
            assert await session_state_left(pool) == []
