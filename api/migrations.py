"""Applying Tortoise's built-in migrations, and checking that they are applied and complete."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.context import TortoiseContext
from tortoise.exceptions import DBConnectionError
from tortoise.migrations.api.migrate import migrate
from tortoise.migrations.autodetector import MigrationAutodetector
from tortoise.migrations.executor import MigrationExecutor

from api.db import tortoise_config


async def apply(database_url: str) -> None:
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(database_url), _create_db=False)
        await check_connection()
        await migrate(config=tortoise_config(database_url))


async def check_connection() -> None:
    """Raises when the current context's database cannot be reached.

    Run it first: the migration planner reads an unreachable database as an empty one, and after a failed
    connect Tortoise's SQLite client keeps its lock, so whatever runs next would wait forever.
    """
    connection = Tortoise.get_connection("default")
    filename = getattr(connection, "filename", None)  # SQLite clients only
    if filename and filename != ":memory:":
        # The commonest SQLite mistake, refused before the driver tries (and fails in a way that leaks the lock).
        directory = Path(filename).parent
        if not await asyncio.to_thread(directory.is_dir):
            raise DBConnectionError(f"unable to open database file: no directory {directory}")
    await connection.execute_query("SELECT 1")


async def pending() -> int:
    """How many migrations the current database still lacks (uses the active Tortoise context)."""
    config: dict[str, Any] = tortoise_config("sqlite://:memory:")
    executor = MigrationExecutor(Tortoise.get_connection("default"), config["apps"])
    return len(await executor.plan())


async def missing_changes() -> list[str]:
    """Model changes that no migration file describes yet (CI fails when this is not empty)."""
    config = tortoise_config("sqlite://:memory:")
    apps_dict: dict[str, Any] = config["apps"]  # type: ignore[assignment]
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        assert ctx.apps is not None  # noqa: S101 -- init() just loaded them
        writers = await MigrationAutodetector(ctx.apps, apps_dict).changes()
    return [f"{w.app_label}.{w.name}" for w in writers]
