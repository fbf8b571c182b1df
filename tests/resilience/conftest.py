"""PostgreSQL only: a migrated and seeded template database per test session (per xdist worker), and a copy of it
for each test that needs one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from tests.resilience.support import Seeded, migrate_and_seed, scratch_database

PHONES = 50


@dataclass(frozen=True)
class Template:
    name: str
    phones: list[Seeded]


@dataclass(frozen=True)
class Scratch:
    name: str
    url: str
    phones: list[Seeded]


@pytest_asyncio.fixture(scope="session")
async def resilience_template(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Template]:
    """Migrated with `interlude migrate`, then a clinic with PHONES registered patients. Fails (never skips) when
    PostgreSQL is down."""
    async with scratch_database() as (name, url):
        phones = await migrate_and_seed(url, PHONES, tmp_path_factory.mktemp("seed"))
        yield Template(name, phones)


@pytest_asyncio.fixture
async def scratch(resilience_template: Template) -> AsyncIterator[Scratch]:
    """A copy of the template (`CREATE DATABASE … TEMPLATE`: a file copy, no migrations run), dropped afterwards."""
    async with scratch_database(resilience_template.name) as (name, url):
        yield Scratch(name, url, resilience_template.phones)
