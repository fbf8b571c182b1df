"""The PostgreSQL server the benchmarks use, and the scratch databases they create on it and drop afterwards."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

SERVER = os.environ.get("INTERLUDE_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")


@asynccontextmanager
async def scratch_database() -> AsyncIterator[tuple[str, str]]:
    """A new, empty `interlude_bench_<random>` database as (name, url), dropped when the block ends."""
    name = f"interlude_bench_{secrets.token_hex(4)}"
    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield name, f"{SERVER}/{name}"
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def admin(statement: str) -> None:
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def analyze(url: str) -> None:
    """A database in service has statistics; a freshly seeded one would otherwise be planned blind."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
