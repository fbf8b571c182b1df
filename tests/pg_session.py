"""What a pooled PostgreSQL connection must not keep between uses, read from the server itself.

api/db.py gives pooled connections back without asyncpg's reset statement (`PooledConnection`). That is safe only
while no code leaves session state on them; `database` (tests/conftest.py) looks at every idle connection of the
pool after each PostgreSQL test with `session_state_left`, so the whole suite's workload is held to it."""

from __future__ import annotations

import asyncpg

# Each row: what was left, or nothing. asyncpg's reset statement (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
# RESET ALL`) would have cleared the first four; a role set by SET ROLE outlives even that.
SESSION_STATE = """
SELECT 'a session setting: ' || string_agg(name, ', ') FROM pg_settings WHERE source = 'session' HAVING count(*) > 0
UNION ALL
SELECT 'LISTEN' WHERE EXISTS (SELECT 1 FROM pg_listening_channels())
UNION ALL
SELECT 'an advisory lock' WHERE EXISTS (
    SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())
UNION ALL
SELECT 'a cursor' WHERE EXISTS (SELECT 1 FROM pg_cursors WHERE is_holdable)  -- others end with their transaction
UNION ALL
SELECT 'a role other than the session''s' WHERE current_user <> session_user
"""


async def session_state_left(pool: asyncpg.Pool | None) -> list[str]:
    """What each idle connection of `pool` still holds; empty when nothing. Connections in use are left alone. No
    pool: Tortoise opens it at the first statement, and a test that sent none (the first of a worker's session)
    left nothing anywhere."""
    found: list[str] = []
    if pool is None:
        return found
    for holder in pool._holders:
        conn = holder._con
        if conn is None or conn.is_closed() or holder._in_use is not None:
            continue
        found.extend(row[0] for row in await conn.fetch(SESSION_STATE))
    return found
