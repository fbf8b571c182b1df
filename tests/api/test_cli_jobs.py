"""`interlude jobs` and `interlude jobs tick --now`, run as operators run them."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from tests.api.test_cli import _environment, query, run, sqlite_url


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    cwd = tmp_path_factory.mktemp("jobs")
    file = cwd / "demo.db"
    assert run(sqlite_url(file), "migrate", cwd=cwd).code == 0
    seeded = run(sqlite_url(file), "demo", cwd=cwd)
    assert seeded.code == 0, seeded.err
    return sqlite_url(file), file, cwd


def test_demo_books_sessions_and_phones_and_plans_prompts(demo_db: tuple[str, Path, Path]) -> None:
    _, file, _ = demo_db
    [(sessions, devices, planned)] = query(
        file,
        "SELECT (SELECT count(*) FROM infusion_session), (SELECT count(*) FROM device),"
        " (SELECT count(*) FROM prompt WHERE status = 'SCHEDULED')",
    )
    assert sessions == 20 * 7  # a five-session series, a booster, and one booked for next week
    assert devices == 20
    assert isinstance(planned, int)
    assert planned >= 20 * 7  # at least a week of daily diaries each


def test_tick_runs_every_pass_once_and_a_replay_at_the_same_clock_changes_nothing(
    demo_db: tuple[str, Path, Path],
) -> None:
    url, file, cwd = demo_db
    [(latest,)] = query(file, "SELECT max(deliver_at) FROM prompt WHERE status = 'SCHEDULED'")
    at = str(latest).replace(" ", "T")
    first = run(url, "jobs", "tick", "--now", at, cwd=cwd)
    assert first.code == 0, first.err
    lines = first.out.splitlines()
    assert lines[0].startswith("tick at ")
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "prompt.expire",
        "prompt.plan",
        "push.dispatch",
        "push.receipts",
        "account.purge_expired_credentials",
        "alert.time_rules",
        "alert.escalate",
        "erasure.purge",
    ]
    assert "released=0" not in first.out  # everything due by the last planned delivery goes out
    [(unsent_due,)] = query(file, "SELECT count(*) FROM prompt WHERE status = 'SCHEDULED' AND deliver_at <= ?", latest)
    assert unsent_due == 0

    replay = run(url, "jobs", "tick", "--now", at, cwd=cwd)
    assert replay.code == 0, replay.err
    assert "released=0" in replay.out
    assert "created=0" in replay.out
    assert "queued=0" in replay.out
    assert "alert.time_rules: clinics=1, raised=0," in replay.out  # missed diaries are raised once, by the first tick


@pytest.mark.parametrize(
    ("now", "message"),
    [("2026-11-26T20:00:00", "offset or Z"), ("tomorrow", "not an ISO-8601 time"), ("", "not an ISO-8601 time")],
)
def test_tick_refuses_a_clock_without_an_offset(demo_db: tuple[str, Path, Path], now: str, message: str) -> None:
    url, _, cwd = demo_db
    refused = run(url, "jobs", "tick", "--now", now, cwd=cwd)
    assert refused.code == 2
    assert message in refused.err


async def test_jobs_process_stops_cleanly_on_sigterm(demo_db: tuple[str, Path, Path]) -> None:
    url, _, cwd = demo_db
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api.cli",
        "jobs",
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        cwd=cwd,
        env=_environment(url),
    )
    assert process.stderr is not None
    try:
        # Bounded wait for start-up; the process logs one JSON line when its clock runs.
        async with asyncio.timeout(60):
            while b"jobs.started" not in await process.stderr.readline():
                pass
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            rest = await process.stderr.read()
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0
    assert b"jobs.stopped" in rest
    assert b"Traceback" not in rest
