"""The `interlude` CLI, run as operators run it: a subprocess reading INTERLUDE_* variables."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import secrets
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
import uvicorn
from uvicorn.config import Config

from api import cli
from api.cli import server_options
from api.domain.account.sealing import Sealer
from tests.api.support import codes, post_graphql
from tests.conftest import POSTGRES, make_settings, repo_root

INTERLUDE = Path(sys.executable).parent / "interlude"
LOGIN = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }"
STAFF_PASSWORD = "long-enough-password"
# Run by a subprocess, like the CLI: this process's Tortoise context stays untouched.
LOGIN_CHECK = """
import asyncio, sys
from tortoise.context import TortoiseContext
from api.container import build_services
from api.db import tortoise_config
from api.domain.clock import utc_now
from api.settings import Settings

async def main() -> None:
    settings = Settings()
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(settings.database_url))
        session = await build_services(settings).accounts.login(sys.argv[1], sys.argv[2], ip=None, now=utc_now())
        print(session.account.role.value, session.account.clinic_id)

asyncio.run(main())
"""


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def last_line(self) -> str:
        return self.out.rstrip("\n").rsplit("\n", 1)[-1]


def _environment(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("INTERLUDE_")}
    # Cheap hashing: the code path is the production one, only faster.
    env.update(INTERLUDE_DATABASE_URL=database_url, INTERLUDE_ARGON2_TIME_COST="1", INTERLUDE_ARGON2_MEMORY_KIB="8")
    env.update(extra)
    return env


def run(database_url: str, *args: str, cwd: Path, **env: str) -> Result:
    done = subprocess.run(  # noqa: S603 -- our own interpreter and CLI, fixed arguments
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_environment(database_url, **env),
        timeout=120,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def sqlite_url(path: Path) -> str:
    return f"sqlite://{path}"


def query(db_file: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db_file)) as conn:
        return conn.execute(sql, params).fetchall()


def write(db_file: Path, sql: str, *params: object) -> None:
    with closing(sqlite3.connect(db_file)) as conn, conn:  # the inner `with` commits
        conn.execute(sql, params)


@dataclass
class Migrated:
    url: str
    file: Path
    clinic_id: UUID
    cwd: Path


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Migrated:
    """One migrated SQLite database with a clinic, shared by the create-user tests (each uses its own email)."""
    cwd = tmp_path_factory.mktemp("cli")
    file = cwd / "interlude.db"
    assert run(sqlite_url(file), "migrate", cwd=cwd).code == 0
    created = run(sqlite_url(file), "create-clinic", "North Clinic", cwd=cwd)
    assert created.code == 0, created.err
    return Migrated(sqlite_url(file), file, UUID(created.last_line), cwd)


def test_migrate_then_create_clinic_prints_the_id_alone_on_the_last_line(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "fresh.db")
    migrated = run(url, "migrate", cwd=tmp_path)
    assert (migrated.code, migrated.out) == (0, "migrations applied\n"), migrated.err
    again = run(url, "migrate", cwd=tmp_path)
    assert again.code == 0, again.err  # applying twice changes nothing

    created = run(url, "create-clinic", "  North Clinic ", cwd=tmp_path)
    assert created.code == 0, created.err
    clinic_id = UUID(created.last_line)  # nothing but the id on that line
    assert created.last_line == str(clinic_id)
    assert query(tmp_path / "fresh.db", "SELECT id, name FROM clinic") == [(str(clinic_id), "North Clinic")]
    assert not (tmp_path / "interlude.db").exists()  # the default database was not touched


def test_create_user_makes_an_account_that_can_sign_in(migrated: Migrated) -> None:
    args = ["--clinic", str(migrated.clinic_id), "--email", "Dr.Who@North.test", "--password", STAFF_PASSWORD]
    created = run(migrated.url, "create-user", "--role", "clinician", *args, cwd=migrated.cwd)
    assert created.code == 0, created.err
    assert created.out.startswith("created clinician account ")
    account_id = UUID(created.out.split()[-1])
    assert query(migrated.file, "SELECT email, role, clinic_id FROM account WHERE id = ?", str(account_id)) == [
        ("dr.who@north.test", "CLINICIAN", str(migrated.clinic_id))
    ]

    signed_in = subprocess.run(  # noqa: S603 -- our own interpreter, fixed script
        [sys.executable, "-c", LOGIN_CHECK, "dr.who@north.test", STAFF_PASSWORD],
        capture_output=True,
        text=True,
        cwd=migrated.cwd,
        env=_environment(migrated.url),
        timeout=60,
        check=False,
    )
    assert signed_in.returncode == 0, signed_in.stderr
    assert signed_in.stdout.split() == ["CLINICIAN", str(migrated.clinic_id)]


def test_create_user_makes_admins_too(migrated: Migrated) -> None:
    args = ["--clinic", str(migrated.clinic_id), "--email", "boss@north.test", "--password", STAFF_PASSWORD]
    created = run(migrated.url, "create-user", "--role", "admin", *args, cwd=migrated.cwd)
    assert created.code == 0, created.err
    assert query(migrated.file, "SELECT role FROM account WHERE email = ?", "boss@north.test") == [("ADMIN",)]


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["--email", "a@b.test", "--password", STAFF_PASSWORD], 2, "the following arguments are required: --role"),
        (["--role", "patient", "--email", "a@b.test", "--password", STAFF_PASSWORD], 2, "invalid choice: 'patient'"),
        (["--role", "clinician", "--email", "a@b.test"], 2, "the following arguments are required: --password"),
        (
            ["--role", "clinician", "--email", "not-an-email", "--password", STAFF_PASSWORD],
            1,
            "email: is not an email address",
        ),
        (
            ["--role", "clinician", "--email", "a@b.test", "--password", "short"],
            1,
            "password: must be at least 12 characters",
        ),
    ],
)
def test_create_user_refuses_bad_arguments(migrated: Migrated, arguments: list[str], code: int, message: str) -> None:
    refused = run(migrated.url, "create-user", "--clinic", str(migrated.clinic_id), *arguments, cwd=migrated.cwd)
    assert refused.code == code
    assert message in refused.err
    assert "Traceback" not in refused.err
    assert "created" not in refused.out
    assert query(migrated.file, "SELECT count(*) FROM account WHERE email = ?", "a@b.test") == [(0,)]


@pytest.mark.parametrize(
    ("clinic", "code", "message"),
    [
        ("not-a-uuid", 2, "argument --clinic: not a clinic id: 'not-a-uuid'"),
        ("00000000-0000-4000-8000-000000000000", 1, "clinic: clinic not found"),
    ],
)
def test_create_user_refuses_a_bad_clinic(migrated: Migrated, clinic: str, code: int, message: str) -> None:
    args = ["--role", "clinician", "--email", "c@d.test", "--password", STAFF_PASSWORD]
    refused = run(migrated.url, "create-user", "--clinic", clinic, *args, cwd=migrated.cwd)
    assert (refused.code, refused.out) == (code, "")
    assert message in refused.err
    assert "Traceback" not in refused.err


def test_create_user_refuses_a_duplicate_email(migrated: Migrated) -> None:
    args = ["--clinic", str(migrated.clinic_id), "--role", "clinician", "--password", STAFF_PASSWORD]
    first = run(migrated.url, "create-user", *args, "--email", "twin@north.test", cwd=migrated.cwd)
    assert first.code == 0, first.err
    second = run(migrated.url, "create-user", *args, "--email", "TWIN@north.test", cwd=migrated.cwd)
    assert second.code == 1
    assert "email: an account with this email already exists" in second.err
    assert "Traceback" not in second.err


OLD_KEY = "old-installation-secret-key-that-is-long-0001"
NEW_KEY = "new-installation-secret-key-that-is-long-0002"
DROPPED_KEY = "dropped-installation-secret-key-that-is-0003"


def test_reseal_secrets_moves_every_totp_secret_to_the_current_key(migrated: Migrated) -> None:
    """After a rotation: secrets under the previous key are sealed again under the current one; what no configured
    key opens is counted, never named by email."""
    sealed_under = {"moved": OLD_KEY, "current": NEW_KEY, "lost": DROPPED_KEY}
    ids = {name: uuid4() for name in sealed_under}
    for name, key in sealed_under.items():
        write(
            migrated.file,
            "INSERT INTO account (id, clinic_id, role, email, password_hash, is_active, created_at, "
            "totp_secret_sealed, totp_confirmed_at) VALUES (?, ?, 'CLINICIAN', ?, 'x', 1, ?, ?, ?)",
            str(ids[name]),
            str(migrated.clinic_id),
            f"reseal-{name}@north.test",
            "2026-11-26 12:00:00+00:00",
            Sealer(key).seal(f"SECRET{name.upper()}", owner=ids[name]),
            "2026-11-26 12:00:00+00:00",
        )
    rotated = {"INTERLUDE_SECRET_KEY": NEW_KEY, "INTERLUDE_PREVIOUS_SECRET_KEYS": OLD_KEY}

    first = run(migrated.url, "reseal-secrets", cwd=migrated.cwd, **rotated)
    second = run(migrated.url, "reseal-secrets", cwd=migrated.cwd, **rotated)

    assert first.code == 0, first.err
    assert first.out.splitlines() == [
        "re-sealed under the current key: 1",
        "already under the current key: 1",
        "unopenable (under a key no longer configured): 1",
    ]
    assert second.out.splitlines()[:2] == ["re-sealed under the current key: 0", "already under the current key: 2"]
    assert "north.test" not in first.out + first.err + second.out + second.err
    rows = query(migrated.file, "SELECT id, totp_secret_sealed FROM account WHERE email LIKE 'reseal-%'")
    stored = {str(account_id): sealed for account_id, sealed in rows}
    # The old key can go: the moved secret opens under the new key alone; the lost one is left as it was.
    assert Sealer(NEW_KEY).open(str(stored[str(ids["moved"])]), owner=ids["moved"]).plaintext == "SECRETMOVED"
    assert Sealer(DROPPED_KEY).open(str(stored[str(ids["lost"])]), owner=ids["lost"]).plaintext == "SECRETLOST"


@pytest.mark.parametrize("command", [["create-clinic", "North Clinic"], ["demo"]])
def test_commands_refuse_an_unmigrated_database(tmp_path: Path, command: list[str]) -> None:
    refused = run(sqlite_url(tmp_path / "empty.db"), *command, cwd=tmp_path)
    assert (refused.code, refused.out) == (1, "")
    assert "run `interlude migrate` first" in refused.err
    assert "Traceback" not in refused.err


def test_production_settings_without_a_secret_are_refused(tmp_path: Path) -> None:
    refused = run(sqlite_url(tmp_path / "x.db"), "migrate", cwd=tmp_path, INTERLUDE_ENV="production")
    assert refused.code == 2
    assert "interlude: invalid settings" in refused.err
    assert "INTERLUDE_SECRET_KEY" in refused.err
    assert "Traceback" not in refused.err
    assert not (tmp_path / "x.db").exists()


def test_an_unknown_command_shows_usage(tmp_path: Path) -> None:
    refused = run(sqlite_url(tmp_path / "x.db"), "frobnicate", cwd=tmp_path)
    assert refused.code == 2
    assert "usage: interlude" in refused.err


def test_export_schema_matches_the_committed_schema(tmp_path: Path) -> None:
    exported = run(sqlite_url(tmp_path / "x.db"), "export-schema", cwd=tmp_path)
    assert exported.code == 0, exported.err
    committed = (repo_root() / "schema.graphql").read_text()
    assert exported.out == committed, (
        "schema.graphql is stale: run `interlude export-schema --output schema.graphql` and commit the result"
    )
    written = run(
        sqlite_url(tmp_path / "x.db"), "export-schema", "--output", str(tmp_path / "out.graphql"), cwd=tmp_path
    )
    assert (written.code, written.out) == (0, "")
    assert (tmp_path / "out.graphql").read_text() == committed


def test_check_migrations_reports_complete_through_the_installed_script(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 -- the project's own console script
        [str(INTERLUDE), "check-migrations"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_environment(sqlite_url(tmp_path / "x.db")),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "migrations: complete\n"


def test_demo_seeds_once_and_prints_the_logins(tmp_path: Path) -> None:
    url, file = sqlite_url(tmp_path / "demo.db"), tmp_path / "demo.db"
    assert run(url, "migrate", cwd=tmp_path).code == 0

    seeded = run(url, "demo", cwd=tmp_path)
    assert seeded.code == 0, seeded.err
    assert "clinician@demo.interlude.test" in seeded.out
    assert "admin@demo.interlude.test" in seeded.out
    assert "patient01@demo.interlude.test" in seeded.out
    assert "interlude-demo-pass" in seeded.out
    assert "19 more patients, patient02 to patient20" in seeded.out
    counts = "SELECT (SELECT count(*) FROM patient), (SELECT count(*) FROM account), (SELECT count(*) FROM diary_entry)"
    [(patients, accounts, entries)] = query(file, counts)
    assert (patients, accounts) == (20, 22)
    assert isinstance(entries, int)
    assert entries > 20 * 60  # about 90 days each, a few missed
    # PHQ-9 and GAD-7 every 14 days from day 88 (7 each), PGIC a week after each induction series; one patient's
    # latest PHQ-9 endorses item 9, so the clinic has exactly one critical alert to show.
    clinical = (
        "SELECT (SELECT count(*) FROM questionnaire_response WHERE instrument IN ('phq9', 'gad7')), "
        "(SELECT count(*) FROM questionnaire_response WHERE instrument = 'pgic'), "
        "(SELECT count(*) FROM alert WHERE severity = 'CRITICAL' AND rule_id = 'phq9_item9')"
    )
    assert query(file, clinical) == [(20 * 14, 20, 1)]

    skipped = run(url, "demo", "--if-empty", cwd=tmp_path)
    assert (skipped.code, skipped.out) == (0, "demo clinic already seeded\n")
    refused = run(url, "demo", cwd=tmp_path)
    assert refused.code == 1
    assert "the demo clinic exists already" in refused.err
    assert query(file, counts) == [(20, 22, entries)]


async def run_async(database_url: str, *args: str, cwd: Path) -> Result:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=_environment(database_url),
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def test_migrate_and_create_clinic_on_postgresql(tmp_path: Path) -> None:
    # A database of our own on the local server, dropped afterwards; no other database is touched.
    name = f"interlude_cli_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(f"{POSTGRES}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{POSTGRES}/{name}"
        before = await run_async(url, "create-clinic", "South Clinic", cwd=tmp_path)
        assert before.code == 1
        assert "run `interlude migrate` first" in before.err

        migrated = await run_async(url, "migrate", cwd=tmp_path)
        assert (migrated.code, migrated.out) == (0, "migrations applied\n"), migrated.err
        created = await run_async(url, "create-clinic", "South Clinic", cwd=tmp_path)
        assert created.code == 0, created.err
        clinic_id = UUID(created.last_line)

        conn = await asyncpg.connect(url)
        try:
            applied = await conn.fetchval("SELECT count(*) FROM tortoise_migrations")
            clinic = await conn.fetchrow("SELECT id, name FROM clinic")
        finally:
            await conn.close()
        migration_files = list((repo_root() / "migrations").glob("0*.py"))
        assert applied == len(migration_files)
        assert clinic is not None
        assert (clinic["id"], clinic["name"]) == (clinic_id, "South Clinic")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_serve_runs_the_app_with_its_own_database_context(tmp_path: Path) -> None:
    """The one test of the lifespan: requests served by uvicorn reach the database the lifespan opened."""
    url = sqlite_url(tmp_path / "served.db")
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api.cli",
        "serve",
        "--port",
        "0",
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=_environment(url),
    )
    try:
        base = await asyncio.wait_for(_announced_address(server), timeout=60)
        assert not base.endswith(":8000")  # `--port 0` means any free port, not the default
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            assert (await client.get("/healthz")).status_code == 200
            pending = await client.get("/readyz")
            assert (pending.status_code, pending.json()["database"]) == (503, "migrations pending")

            assert (await run_async(url, "migrate", cwd=tmp_path)).code == 0
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            login = await post_graphql(client, LOGIN, {"email": "nobody@north.test", "password": STAFF_PASSWORD})
            assert codes(login) == ["UNAUTHENTICATED"], login.text
            request_id = login.headers["x-request-id"]
    finally:
        if server.returncode is None:
            server.terminate()
        _, err = await asyncio.wait_for(server.communicate(), timeout=60)
    logs = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    served = [r for r in logs if r["event"] == "http.request" and r.get("request_id") == request_id]
    assert [(r["path"], r["status"], r["operation"]) for r in served] == [("/graphql", 200, "login")]
    assert "Application shutdown complete." in [r["event"] for r in logs]


async def _announced_address(server: asyncio.subprocess.Process) -> str:
    assert server.stderr is not None
    while line := await server.stderr.readline():
        event = json.loads(line).get("event", "") if line.startswith(b"{") else ""
        if match := re.search(r"running on (http://\S+)", event):
            return match.group(1)
    raise AssertionError("the server stopped before it announced its address")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgres://postgres@127.0.0.1:1/interlude_nowhere", "Connect call failed"),
        ("sqlite:///{tmp}/missing-dir/x.db", "unable to open database file"),
        ("nosuchdb://x", "Unknown DB scheme"),
    ],
)
def test_an_unusable_database_is_a_one_line_refusal(tmp_path: Path, url: str, reason: str) -> None:
    url = url.replace("/{tmp}", str(tmp_path))
    # Before the fix, the SQLite case waited forever and the others ended in a traceback.
    for command, refusal in ((["migrate"], "cannot migrate the database"), (["create-clinic", "X"], "cannot open")):
        refused = run(url, *command, cwd=tmp_path)
        assert (refused.code, refused.out) == (1, ""), refused.err
        assert refused.err.startswith(f"interlude: {refusal}")
        assert reason in refused.err
        assert "Traceback" not in refused.err


def test_serve_names_implementations_that_are_installed_and_serve_websockets() -> None:
    """`interlude serve` names its loop, HTTP and websocket implementations instead of uvicorn's "auto", which
    quietly falls back (to asyncio, to h11, and for websockets to none at all: subscriptions refused)."""
    settings = make_settings()
    config = Config(lambda *_: None, **server_options(settings))
    config.load()  # imports each named implementation: a missing package fails here

    assert (config.loop, config.http, config.ws) == ("uvloop", "httptools", "websockets-sansio")
    assert config.ws_protocol_class is not None
    assert config.ws_max_size == settings.max_body_bytes
    assert config.access_log is False


def test_serve_settles_the_collector_before_uvicorn_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """What start-up made is frozen out of the collector's sight, and the youngest generation is collected less
    often than Python's default (the older generations as before), when uvicorn starts serving."""
    seen: list[tuple[tuple[int, int, int], int]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *_, **__: seen.append((gc.get_threshold(), gc.get_freeze_count())))
    before = gc.get_threshold()
    try:
        cli.run_server(lambda *_: None, make_settings(), host="127.0.0.1", port=0)  # type: ignore[arg-type]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    [(thresholds, frozen)] = seen
    assert thresholds == (cli.YOUNG_GENERATION_THRESHOLD, *before[1:])
    assert before[0] != cli.YOUNG_GENERATION_THRESHOLD
    assert frozen > 0
