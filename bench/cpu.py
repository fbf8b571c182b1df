"""CPU per request, in-process: each API case's request through Interlude's own ASGI app, one at a time.

    .venv/bin/python -m bench.cpu [--cases write diary30 …] [--requests 2000] [--patients 20]

About a minute. The server's throughput in bench/api.py is bound by its one thread, so its CPU per request is the
figure to move; this measures that figure alone, without the load generator, the sockets or the floor, so that a
change can be judged in a minute instead of a 45-minute run. It is the quick loop; bench/api.py is the result.

On a scratch database of the PostgreSQL server (bench/postgres.py), seeded as bench/api.py seeds it (fewer patients
by default; a year of entries each), Tortoise is opened with a pool of 10 as `interlude serve` opens it and JSON
logs go to /dev/null at the production level. Each case's request (bench/cases.py: the same documents, variables
and tokens) is sent straight to the ASGI app built by `create_app` with production settings: no HTTP server, no
socket. The figure is this process's CPU time (user + system) per request, after a warm-up: the median of five
blocks of N/5 requests each; PostgreSQL's own time is not in it. The baseline, measured in the same run, is
`{ __typename }` as the patient: the fixed cost of a request through the app (middlewares, token check, the GraphQL
request with an empty execution).

One request at a time, each statement's round trip leaves the event loop idle, so the figures are about twice the
server's CPU per request under load, where one wake-up of the loop serves several requests. On a shared machine,
runs of the same code differ by up to 15%: a change smaller than that needs several runs, or bench/api.py.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import uvloop
from starlette.types import ASGIApp, Message
from tortoise.context import TortoiseContext

from api import migrations
from api.app import create_app
from api.cli import settle_heap
from api.db import tortoise_config
from api.logging import configure_logging
from bench.api import POOL, Database, fixture, server_environment, settings_of
from bench.api_seed import seed_clinic
from bench.cases import CASES, GRAPHQL, Fixture, Request, requests_for
from bench.postgres import analyze, scratch_database

BASELINE = "baseline"
BASELINE_BODY = b'{"query":"{ __typename }"}'
BLOCKS = 5


class Driver:
    """Sends one request at a time to an ASGI app, as uvicorn would hand it over, and checks the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def send(self, request: Request) -> None:
        headers = [
            (b"host", b"bench"),
            (b"authorization", f"Bearer {request.token}".encode()),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json"),
            (b"content-length", str(len(request.body)).encode()),
        ]
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": request.path,
            "raw_path": request.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        body = [{"type": "http.request", "body": request.body, "more_body": False}]
        answer: list[Message] = []

        async def receive() -> Message:
            return body.pop() if body else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            answer.append(message)

        await self.app(scope, receive, send)
        status = answer[0]["status"]
        content = b"".join(m.get("body", b"") for m in answer[1:])
        if status != 200 or b'"errors"' in content:
            raise SystemExit(f"{request.path}: HTTP {status}: {content[:300].decode(errors='replace')}")


def _requests(case: str, fix: Fixture) -> Callable[[], Request]:
    if case == BASELINE:
        patient = fix.patients[0]
        return lambda: Request(GRAPHQL, patient.token, BASELINE_BODY)
    made = requests_for(case, "interlude", fix, random.Random(6))
    if made.make is not None:
        return made.make
    variants = made.variants
    rng = random.Random(7)
    return lambda: variants[rng.randrange(len(variants))]


async def measure(driver: Driver, case: str, fix: Fixture, *, requests: int, warmup: int) -> float:
    """µs of this process's CPU per request after `warmup`: the median of BLOCKS blocks of `requests` ÷ BLOCKS
    each (the machine is shared: a block that another process slowed does not move the median)."""
    make = _requests(case, fix)
    for _ in range(warmup):
        await driver.send(make())
    per_block = max(1, requests // BLOCKS)
    figures = []
    for _ in range(BLOCKS):
        prepared = [make() for _ in range(per_block)]
        gc.collect()
        started = time.process_time()
        for request in prepared:
            await driver.send(request)
        figures.append((time.process_time() - started) / per_block * 1e6)
    return statistics.median(figures)


async def run(args: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, float] = {}
    async with scratch_database() as (_, url):
        await migrations.apply(url)
        settings = settings_of(server_environment(url + POOL))
        database = Database(url)
        with TortoiseContext() as ctx:
            await ctx.init(config=tortoise_config(url + POOL))
            try:
                clinic = await seed_clinic(args.patients, args.days, now=datetime.now(UTC))
                await analyze(url)
                fix = fixture(settings, clinic)
                driver = Driver(create_app(settings, manage_orm=False))
                settle_heap()  # as `interlude serve` does after start-up
                for case in [BASELINE, *args.cases]:
                    since = datetime.now(UTC)
                    figures[case] = await measure(driver, case, fix, requests=args.requests, warmup=args.warmup)
                    if case in CASES and CASES[case].writes:
                        await database.forget_writes(since)
                    print(f"  {case}: {figures[case]:,.0f} µs", file=sys.stderr, flush=True)
            finally:
                await ctx.close_connections()
    return figures


def print_report(figures: Mapping[str, float]) -> None:
    base = figures[BASELINE]
    print(f"{'case':<12} {'CPU µs/req':>11} {'÷ baseline':>11} {'− baseline µs':>14}")
    for case, value in figures.items():
        print(f"{case:<12} {value:>11,.0f} {value / base:>10.2f}× {value - base:>14,.0f}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=["write", "diary30", "patient100"])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per case")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # JSON logs at the production level, as `interlude serve` writes them, to nowhere.
    with open(os.devnull, "w") as devnull:
        configure_logging(settings_of(server_environment("")).log_level, devnull)
        print_report(uvloop.run(run(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
