"""Shared fixtures: a migrated database per backend (SQLite and PostgreSQL), factories, a fixed clock.

Every test that takes `db` runs once on each backend in INTERLUDE_TEST_BACKENDS (default: both). PostgreSQL is
reached at INTERLUDE_TEST_POSTGRES (default 127.0.0.1:5432, user postgres); when it is down those tests fail —
they never skip. Each run creates its own database and drops it afterwards.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.connection import connections
from tortoise.context import TortoiseContext
from tortoise.contrib.test import truncate_all_models

from api import migrations
from api.app import create_app
from api.container import build_services
from api.db import tortoise_config
from api.domain.services import Services
from api.settings import Settings
from tests.factories import Factory
from tests.graphql import GraphQLClient
from tests.pg_session import session_state_left

BACKENDS = [b.strip() for b in os.environ.get("INTERLUDE_TEST_BACKENDS", "sqlite,postgres").split(",") if b.strip()]
POSTGRES = os.environ.get("INTERLUDE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def make_settings(database_url: str = "sqlite://:memory:") -> Settings:
    # Cheap argon2 parameters: the hashing code path is the same, only slower in production.
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        argon2_time_cost=1,
        argon2_memory_kib=8,
    )


@dataclass
class Database:
    backend: str
    url: str


async def _create_postgres_database() -> tuple[str, str]:
    name = f"interlude_test_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(f"{POSTGRES}/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, f"{POSTGRES}/{name}"


async def _drop_postgres_database(name: str) -> None:
    conn = await asyncpg.connect(f"{POSTGRES}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest_asyncio.fixture(scope="session", params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Database]:
    """A database migrated with the project's own migrations, open as the global Tortoise context."""
    backend: str = request.param
    pg_name = None
    if backend == "sqlite":
        url = f"sqlite://{tmp_path_factory.mktemp('db') / 'test.db'}"
    elif backend == "postgres":
        pg_name, url = await _create_postgres_database()
    else:
        raise pytest.UsageError(f"unknown backend {backend!r} in INTERLUDE_TEST_BACKENDS")
    # Tortoise caches each model's SQL by (connection name, table), not by dialect: switching backends in one
    # process would reuse SQLite's `?` placeholders on PostgreSQL.
    EXECUTOR_CACHE.clear()
    try:
        await migrations.apply(url)
        async with TortoiseContext() as ctx:
            await ctx.init(config=tortoise_config(url), _enable_global_fallback=True)
            yield Database(backend, url)
    finally:
        if pg_name:
            await _drop_postgres_database(pg_name)


@pytest_asyncio.fixture
async def db(database: Database) -> AsyncIterator[Database]:
    yield database
    if database.backend == "postgres":
        # Pooled connections go back without a reset statement (api/db.py): nothing may stay on them.
        assert await session_state_left(connections.get("default")._pool) == []
    await truncate_all_models()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def services(settings: Settings) -> Services:
    return build_services(settings)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def factory(db: Database, services: Services, now: datetime) -> Factory:
    return Factory(services, now)


@pytest.fixture
def gql(db: Database, services: Services, now: datetime) -> GraphQLClient:
    return GraphQLClient(services, now)


@pytest_asyncio.fixture
async def http(db: Database, settings: Settings, now: datetime) -> AsyncIterator[httpx.AsyncClient]:
    """The real ASGI app (middleware, auth, GraphQL view) over httpx, on the test database."""
    app = create_app(settings, manage_orm=False, clock=lambda: now)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://interlude.test") as client:
        yield client


class QueryCounter(logging.Handler):
    """Counts SQL statements Tortoise sends: each one's verb, and its text (never the parameters)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Tortoise logs either `debug(sql)` or `debug("%s: %s", sql, params)`.
        sql = str(record.args[0]) if isinstance(record.args, tuple) and record.args else str(record.msg)
        verb = sql.lstrip().split(" ", 1)[0].upper()
        if verb in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}:
            self.statements.append(verb)
            self.texts.append(sql)


@contextmanager
def count_queries() -> Iterator[QueryCounter]:
    logger = logging.getLogger("tortoise.db_client")
    counter = QueryCounter()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous)


@contextmanager
def count_acquisitions() -> Iterator[list[object]]:
    """Connections taken from the PostgreSQL pool of Tortoise's default connection meanwhile, one item each."""
    pool = connections.get("default")._pool
    assert pool is not None, "a PostgreSQL database, with its pool open"
    taken: list[object] = []
    acquire = pool.acquire

    def counted(*args: object, **kwargs: object) -> object:
        taken.append(args)
        return acquire(*args, **kwargs)

    pool.acquire = counted  # shadows the method on this pool only
    try:
        yield taken
    finally:
        del pool.acquire


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
