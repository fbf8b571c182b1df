"""One seeded world per database for the whole fuzzing module, and the running app it is fuzzed through.

The world is built once (per backend, per worker) rather than per test: the fuzzer's tests share it, and the
tables are emptied when the module is done, as `db` does after each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest_asyncio
from schemathesis.specs.graphql.schemas import GraphQLSchema
from tortoise.contrib.test import truncate_all_models

from api.app import create_app
from api.domain.services import Services
from api.settings import Settings
from tests.conftest import NOW, Database
from tests.factories import Factory
from tests.fuzz import world
from tests.fuzz.support import Request, load_schema, send


@dataclass
class Fuzz:
    client: httpx.AsyncClient
    schema: GraphQLSchema
    services: Services
    world: world.World

    async def reseed_if_damaged(self) -> None:
        if not await self.intact():
            await truncate_all_models()
            self.world = await world.seed(Factory(self.services, NOW), self.services, NOW)

    async def intact(self) -> bool:
        """False once a fuzzed mutation took something the next test needs: an admin erased or discharged one of
        the patients, or a caller's token stopped working (a changed password, a second factor now required)."""
        if not await self.world.intact():
            return False
        for caller in self.world.callers.values():
            exchange = await send(self.client, caller, Request("{ me { id } }"))
            if exchange.status != 200 or '"errors"' in exchange.body:
                return False
        return True


@pytest_asyncio.fixture(scope="module")
async def fuzz_session(database: Database, settings: Settings, services: Services) -> AsyncIterator[Fuzz]:
    app = create_app(settings, manage_orm=False, clock=lambda: NOW)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
    try:
        seeded = await world.seed(Factory(services, NOW), services, NOW)
        async with httpx.AsyncClient(transport=transport, base_url="http://interlude.test") as client:
            yield Fuzz(client, await load_schema(client), services, seeded)
    finally:
        await truncate_all_models()


@pytest_asyncio.fixture
async def fuzz(fuzz_session: Fuzz) -> Fuzz:
    """The shared world, seeded again if the previous test's mutations took one of its patients away."""
    await fuzz_session.reseed_if_damaged()
    return fuzz_session
