"""Fifty phones syncing forty entries each at once, through the real server on PostgreSQL, with duplicate resends,
resends racing their original, and phones hanging up mid-request: every entry is stored exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.resilience.conftest import Scratch
from tests.resilience.support import (
    Faults,
    acknowledged,
    check_exactly_once,
    driving,
    failures,
    fleet,
    serving,
    total,
)

ENTRIES = 40


async def test_every_acknowledged_entry_is_stored_exactly_once(scratch: Scratch, tmp_path: Path) -> None:
    async with serving(scratch.url, tmp_path) as server:
        # Strict phones: an error in any answer fails the test; only dropped connections are retried.
        phones = fleet(scratch.phones, server.base_url, Faults(), entries=ENTRIES, seed=1, within=120)
        async with driving(phones) as load:
            await asyncio.wait_for(load, timeout=150)
        assert server.alive
    assert acknowledged(phones) == len(scratch.phones) * ENTRIES == 2000
    # The faults happened: resends, resends racing their original, and hang-ups.
    assert min(total(phones, "duplicated"), total(phones, "raced"), total(phones, "aborted")) > 10
    assert await check_exactly_once(scratch.url, phones) == []
    assert failures(server) == []
