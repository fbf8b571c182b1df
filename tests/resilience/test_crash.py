"""The server killed with SIGKILL in the middle of fifty phones' sync, then started again on the same port: the phones
retry until acknowledged, and every entry is stored exactly once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg

from tests.resilience.conftest import Scratch
from tests.resilience.support import (
    Faults,
    acknowledged,
    check_exactly_once,
    driving,
    failures,
    fleet,
    progress,
    serving,
    total,
    until,
)

ENTRIES = 40


async def test_a_killed_server_loses_and_duplicates_nothing_it_acknowledged(scratch: Scratch, tmp_path: Path) -> None:
    async with serving(scratch.url, tmp_path) as server:
        port, pid = server.port, server.pid
        # Strict phones: refused and dropped connections are retried, but any error in an answer fails the test.
        phones = fleet(scratch.phones, server.base_url, Faults(), entries=ENTRIES, seed=3, within=120)
        async with driving(phones) as load:
            await until(lambda: progress(phones, 0.35), within=60, what="35% acknowledged")

            assert await server.kill() == -signal.SIGKILL
            at_kill = acknowledged(phones)
            # What the dead process acknowledged is stored, once, before anything is retried against a new one.
            assert await check_exactly_once(scratch.url, phones, complete=False) == []
            # Its sessions end with it: the transactions it left open are rolled back, not left holding locks.
            await until(lambda: _no_sessions(scratch.url), within=10, what="the dead server's sessions ended")

            await server.start()
            assert (server.port, server.starts) == (port, 2)
            assert server.pid != pid
            await asyncio.wait_for(load, timeout=120)
    assert 0 < at_kill < acknowledged(phones)
    assert total(phones, "refused") > 0  # the phones saw the server go
    assert await check_exactly_once(scratch.url, phones) == []
    assert failures(server) == []


async def _no_sessions(url: str) -> bool:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return bool(await conn.fetchval(query) == 0)
    finally:
        await conn.close()
