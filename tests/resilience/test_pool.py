"""Pooled PostgreSQL connections go back to the pool without asyncpg's reset statement (api/db.py
`PooledConnection`), which is safe only while nothing leaves session state on them."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
from tortoise.connection import connections
from tortoise.context import TortoiseContext

from api.db import PooledConnection, tortoise_config
from tests.resilience.conftest import Scratch

ROOT = Path(__file__).resolve().parents[2]
# Statements that leave state on a session, which the reset statement would have cleared: a session setting (not
# `SET LOCAL`, which ends with its transaction; not an UPDATE's SET, preceded by a table name), an advisory lock, a
# cursor, LISTEN.
SESSION_STATE = re.compile(
    r"""["'(]\s*SET\s+(?!LOCAL\b)(SESSION\s+)?[a-z_.]+\s*(=|TO\b)|pg_advisory_lock|pg_try_advisory_lock|"""
    r"""\bDECLARE\s+\w+\s+.*CURSOR\b|["']\s*LISTEN\b|\.add_listener\(""",
    re.IGNORECASE,
)
# The alert broker's LISTEN is on a connection it opens itself, outside the pool.
OWN_CONNECTION = {"api/domain/alert/pg_broker.py"}


async def test_a_pooled_connection_goes_back_without_a_reset_statement(scratch: Scratch) -> None:
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(f"{scratch.url}?maxsize=1"))
        pool = await _pool()
        sent: list[str] = []
        async with pool.acquire() as conn:
            assert isinstance(conn, PooledConnection)
            conn.add_query_logger(lambda record: sent.append(record.query))
            await conn.fetchval("SELECT 1")
        # The one connection of the pool, given back and taken again.
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 2")
        assert sent == ["SELECT 1", "SELECT 2"]


async def test_a_transaction_left_open_is_still_rolled_back_on_release(scratch: Scratch) -> None:
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(f"{scratch.url}?maxsize=1"))
        pool = await _pool()
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("CREATE TABLE left_open (id int)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            with_table = await conn.fetchval("SELECT to_regclass('left_open')")
        assert with_table is None


async def _pool() -> asyncpg.Pool:
    client = connections.get("default")
    await client.execute_query("SELECT 0")  # Tortoise opens its pool on first use
    return client._pool


def test_no_code_leaves_session_state_on_a_pooled_connection() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)!r}"
        for folder in ("api", "jobs", "schema")
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
    ]
    harmless = ["'SET LOCAL lock_timeout = 1'", '"UPDATE prompt SET status = $1"', "# set to 3"]
    assert all(SESSION_STATE.search(s) for s in statements)
    assert not any(SESSION_STATE.search(s) for s in harmless)
    assert asyncpg.Connection.get_reset_query is not PooledConnection.get_reset_query
