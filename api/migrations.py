"""Applying Tortoise's built-in migrations, and checking that they are applied and complete."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise
from tortoise.context import TortoiseContext
from tortoise.migrations.api.migrate import migrate
from tortoise.migrations.autodetector import MigrationAutodetector
from tortoise.migrations.executor import MigrationExecutor

from api.db import tortoise_config


async def apply(database_url: str) -> None:
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(database_url), _create_db=False)
        await migrate(config=tortoise_config(database_url))


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
