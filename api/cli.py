"""`interlude`: one CLI for operators. Every command reads the same INTERLUDE_* settings."""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from tortoise.context import TortoiseContext
from tortoise.exceptions import BaseORMException

from api import demo, migrations
from api.app import create_app
from api.container import build_alerts, build_broker, build_job_config, build_services
from api.db import tortoise_config
from api.domain.actor import Role
from api.domain.clock import utc_now
from api.domain.errors import DomainError
from api.logging import configure_logging
from api.push_setup import build_providers, close_providers
from api.settings import Settings
from jobs.passes import tick
from jobs.scheduler import JobClock
from schema import build_schema

EXIT_USAGE = 2
# What opening a database can raise: a bad URL or driver, a refused connection, a missing database or file.
DATABASE_ERRORS = (BaseORMException, OSError, ImportError)


class CliError(Exception):
    """A refusal to print on stderr, with a non-zero exit."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"interlude: invalid settings: {_first_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_level)
    try:
        result: int = args.run(settings, args)
    except (CliError, DomainError) as exc:
        field = getattr(exc, "field", None)
        print(f"interlude: {field + ': ' if field else ''}{exc}", file=sys.stderr)
        return 1
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="interlude", description="Interlude: between-infusion follow-up.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the API server")
    serve.add_argument("--host", help="address to bind (default: INTERLUDE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: INTERLUDE_PORT or 8000)")
    serve.set_defaults(run=_serve)

    jobs = commands.add_parser("jobs", help="run the periodic passes (planning, dispatch, expiry) until SIGTERM")
    jobs.set_defaults(run=_jobs)
    jobs_commands = jobs.add_subparsers(dest="jobs_command", metavar="COMMAND")
    tick = jobs_commands.add_parser("tick", help="run every pass once at a given clock and print what it did")
    tick.add_argument("--now", required=True, type=_instant, help="ISO-8601 time with offset, e.g. 2026-11-26T20:00Z")
    tick.set_defaults(run=_jobs_tick)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(run=_migrate)

    check = commands.add_parser("check-migrations", help="fail if model changes lack a migration")
    check.set_defaults(run=_check_migrations)

    clinic = commands.add_parser("create-clinic", help="create a clinic; prints its id on the last line")
    clinic.add_argument("name")
    clinic.set_defaults(run=_create_clinic)

    user = commands.add_parser("create-user", help="create a clinician or admin account")
    user.add_argument("--clinic", required=True, type=_uuid, help="clinic id")
    user.add_argument("--role", required=True, choices=["clinician", "admin"])
    user.add_argument("--email", required=True)
    user.add_argument(
        "--password", required=True, help="12 to 128 characters, not a common password, not containing the email"
    )
    user.set_defaults(run=_create_user)

    reseal = commands.add_parser(
        "reseal-secrets",
        help="after a key rotation: seal every stored TOTP secret under the current key; prints what it found",
    )
    reseal.set_defaults(run=_reseal_secrets)

    demo = commands.add_parser("demo", help="seed a demo clinic and print its logins")
    demo.add_argument("--if-empty", action="store_true", help="do nothing if the demo clinic exists")
    demo.set_defaults(run=_demo)

    export = commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")
    export.set_defaults(run=_export_schema)
    return parser


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a clinic id: {value!r}") from None


def _instant(value: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {value!r}") from None
    if instant.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"give the time with an offset or Z: {value!r}")
    return instant.astimezone(UTC)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ()))
    return f"{where + ': ' if where else ''}{error['msg']}"


def _with_db(settings: Settings, work: Callable[[], Awaitable[int]]) -> int:
    async def run() -> int:
        async with _database(settings.database_url):
            if await migrations.pending():
                raise CliError("the database is not migrated; run `interlude migrate` first")
            return await work()

    return asyncio.run(run())


@asynccontextmanager
async def _database(url: str) -> AsyncIterator[None]:
    """The database as the current Tortoise context. Failing to open it is a one-line refusal, not a traceback."""
    with TortoiseContext() as ctx:
        try:
            await ctx.init(config=tortoise_config(url))
            await migrations.check_connection()
        except DATABASE_ERRORS as exc:
            # Not closed: closing a context whose connection never opened raises a second, less useful error.
            raise CliError(f"cannot open the database: {exc}") from exc
        try:
            yield
        finally:
            await ctx.close_connections()


def server_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves the app (`run_server`)."""
    return {
        # Named, not "auto": a missing package fails at start instead of quietly serving slower (or, for the
        # websocket implementation, not serving subscriptions at all).
        "loop": "uvloop",
        "http": "httptools",
        "ws": "websockets-sansio",
        "log_config": None,
        "access_log": False,  # RequestIdMiddleware writes one line per request, without the query string
        # A websocket message holds at most what a request body may: uvicorn's own default is 16 MiB.
        "ws_max_size": settings.max_body_bytes,
    }


# The youngest generation is collected once this many more container objects have been made than freed (Python's
# default is 700). A request's objects are freed by reference counting when it ends (no request leaves a cycle:
# tests/api/test_reference_cycles.py), but under load the objects of every request in flight are alive at each
# collection: at 700, with the API benchmark's 32 in flight, one came every six requests or so, walked them all and
# moved them on to the older generations, to be walked again there: about 5% of the server's CPU, against 1–2% of
# the floor's. At 10,000 neither server ran 20 collections in a benchmark run (bench/README.md, session 12).
YOUNG_GENERATION_THRESHOLD = 10_000


def settle_heap() -> None:
    """The collector set for serving, once everything made at start-up exists.

    What exists now (modules, the schema, compiled validation rules) lives as long as the process: moved out of
    the collector's sight, full collections stop walking it on every request burst (the p99, bench/README.md)."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)


def run_server(app: Starlette, settings: Settings, *, host: str, port: int) -> None:
    """Serves `app` until stopped, as `interlude serve` does (the benchmark's floor app too: bench/floor_app.py)."""
    settle_heap()
    uvicorn.run(app, host=host, port=port, **server_options(settings))


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    host = args.host if args.host is not None else settings.host
    port = args.port if args.port is not None else settings.port  # `--port 0` asks the system for a free port
    run_server(create_app(settings), settings, host=host, port=port)
    return 0


def _jobs(settings: Settings, _: argparse.Namespace) -> int:
    async def work() -> int:
        providers = build_providers(settings)
        # With PostgreSQL, raised and escalated alerts reach the API replicas' subscribers through this broker.
        broker = build_broker(settings)
        clock = JobClock(build_job_config(settings, providers, build_alerts(settings, broker)), utc_now)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        clock.start()
        try:
            await stop.wait()
        finally:
            await clock.stop()
            await broker.close()
            await close_providers(providers)
        return 0

    return _with_db(settings, work)


def _jobs_tick(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        providers = build_providers(settings)
        broker = build_broker(settings)
        try:
            report = await tick(build_job_config(settings, providers, build_alerts(settings, broker)), args.now)
        finally:
            await broker.close()
            await close_providers(providers)
        print(f"tick at {args.now.isoformat()}")
        for job, counts in report.items():
            print(f"  {job}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        return 0

    return _with_db(settings, work)


def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    try:
        asyncio.run(migrations.apply(settings.database_url))
    except DATABASE_ERRORS as exc:
        raise CliError(f"cannot migrate the database: {exc}") from exc
    print("migrations applied")
    return 0


def _check_migrations(_: Settings, __: argparse.Namespace) -> int:
    missing = asyncio.run(migrations.missing_changes())
    if missing:
        print("models changed without a migration; run `tortoise makemigrations`:", ", ".join(missing), file=sys.stderr)
        return 1
    print("migrations: complete")
    return 0


def _create_clinic(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        clinic = await build_services(settings).accounts.create_clinic(args.name, now=utc_now())
        print(f"created clinic {clinic.name!r}")
        print(clinic.id)
        return 0

    return _with_db(settings, work)


def _create_user(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        account = await build_services(settings).accounts.create_staff(
            args.clinic, Role(args.role.upper()), args.email, args.password, now=utc_now()
        )
        print(f"created {args.role} account {account.id}")
        return 0

    return _with_db(settings, work)


def _reseal_secrets(settings: Settings, _: argparse.Namespace) -> int:
    async def work() -> int:
        found = await build_services(settings).accounts.second_factor.reseal_all()
        print(f"re-sealed under the current key: {found.resealed}")
        print(f"already under the current key: {found.current}")
        # A count, never who: their owners are told at sign-in to ask a clinic admin for a reset.
        print(f"unopenable (under a key no longer configured): {len(found.unopenable)}")
        return 0

    return _with_db(settings, work)


def _demo(settings: Settings, args: argparse.Namespace) -> int:

    async def work() -> int:
        if await demo.seeded():
            if args.if_empty:
                print("demo clinic already seeded")
                return 0
            raise CliError("the demo clinic exists already")
        print("seeding the demo clinic…", flush=True)
        logins = await demo.seed(
            build_services(settings), now=utc_now(), progress=lambda s: print("  " + s, flush=True)
        )
        print("\ndemo logins (development only):")
        for login in logins[:3]:
            print(f"  {login.role:<10} {login.email:<36} {login.password}")
        print(f"  … and {len(logins) - 3} more patients, patient02 to patient{len(logins) - 2:02d}, same password")
        return 0

    return _with_db(settings, work)


def _export_schema(settings: Settings, args: argparse.Namespace) -> int:
    sdl = build_schema(production=False).as_str() + "\n"
    if args.output:
        args.output.write_text(sdl)
    else:
        sys.stdout.write(sdl)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
