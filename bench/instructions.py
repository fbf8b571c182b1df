"""Instructions per request, in-process, counted by Valgrind: a figure that does not move with the machine.

    .venv/bin/python -m bench.instructions [--cases diary30 write] [--requests 300]

Needs `valgrind` (Debian's package of that name). A few minutes: about one for each case and app.

On a shared machine the CPU time of one code differs by a third from one run to the next (bench/README.md,
session 13): a change of a few percent cannot be told from the noise without many runs. The number of instructions
the interpreter executes for a request hardly moves: two runs of one code differ by 0.1–0.3%. It is not the time
(a cache miss costs what a hundred instructions do, and this counts neither), so it judges a change's work, not
its effect on memory traffic; bench/api.py remains the result.

Each case runs in a child process under `valgrind --tool=callgrind --instr-atstart=no`, once for Interlude and once
for the floor: seeding and start-up run uninstrumented, then the child switches counting on
(`callgrind_control --instr=on`) for the measured requests (and the lines that switch it) and off again, and this
process reads the total
from callgrind's summary. The child is bench/cpu.py's driver: each case's request (bench/cases.py) sent to the ASGI
app, one at a time, after a warm-up (Interlude built by `create_app` with production settings, the floor by
bench/floor_app.py), on a scratch database seeded as the API benchmark seeds it, smaller. The ratio is the floor's
instructions ÷ Interlude's: where bench/api.py's requests-per-second ratio would be if an instruction cost the same
in both apps (the uvicorn server around each app is not counted).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import uvloop
from tortoise.context import TortoiseContext

from api import migrations
from api.app import create_app
from api.cli import settle_heap
from api.db import tortoise_config
from api.logging import configure_logging
from bench.api import POOL, fixture, server_environment, settings_of
from bench.api_seed import seed_clinic
from bench.cases import CASES, Request, requests_for
from bench.cpu import Driver
from bench.floor_app import build_app
from bench.postgres import analyze, scratch_database

APPS = ("interlude", "floor")
_COLLECTED = re.compile(rb"Collected : (\d+)")


def count(case: str, app: str, *, requests: int, patients: int, days: int) -> int:
    """Instructions the child executed for `requests` requests of the case, under callgrind."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={scratch}/callgrind.out",
            sys.executable,
            "-m",
            "bench.instructions",
            "--child",
            app,
            "--cases",
            case,
            "--requests",
            str(requests),
            "--patients",
            str(patients),
            "--days",
            str(days),
        ]
        # Fixed arguments, no shell.
        done = subprocess.run(command, capture_output=True, check=False)  # noqa: S603
    found = _COLLECTED.findall(done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"{case} on {app}: {done.stderr.decode(errors='replace')[-3000:]}")
    return int(found[-1])


async def child(app_name: str, case: str, *, requests: int, patients: int, days: int) -> None:
    """Seeds, starts the app, warms it up, then counts exactly `requests` requests (see the module)."""
    async with scratch_database() as (_, url), AsyncExitStack() as stack:
        await migrations.apply(url)
        settings = settings_of(server_environment(url + POOL))
        ctx = stack.enter_context(TortoiseContext())
        await ctx.init(config=tortoise_config(url + POOL))
        stack.push_async_callback(ctx.close_connections)
        clinic = await seed_clinic(patients, days, now=datetime.now(UTC))
        await analyze(url)
        fix = fixture(settings, clinic)
        if app_name == "floor":
            app = build_app(url + POOL)
            await stack.enter_async_context(app.router.lifespan_context(app))
        else:
            app = create_app(settings, manage_orm=False)
        made = requests_for(case, app_name, fix, random.Random(6))
        rng = random.Random(7)
        make: Callable[[], Request] = made.make or (lambda: made.variants[rng.randrange(len(made.variants))])
        driver = Driver(app)
        settle_heap()  # as `interlude serve` does after start-up
        for _ in range(50):
            await driver.send(make())
        prepared = [make() for _ in range(requests)]
        _instrument("on")
        for request in prepared:
            await driver.send(request)
        _instrument("off")


def _instrument(state: str) -> None:
    # Returns once callgrind has switched: it answers the command before this process runs on.
    subprocess.run(["callgrind_control", f"--instr={state}", str(os.getpid())], check=True, capture_output=True)  # noqa: S603, S607


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=["write", "diary30"])
    parser.add_argument("--requests", type=int, default=300, help="counted requests per case and app")
    parser.add_argument("--patients", type=int, default=4)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--child", choices=APPS, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes = {"requests": args.requests, "patients": args.patients, "days": args.days}
    if args.child is not None:
        # JSON logs at the production level, as `interlude serve` writes them, to nowhere.
        with open(os.devnull, "w") as devnull:
            configure_logging(settings_of(server_environment("")).log_level, devnull)
            uvloop.run(child(args.child, args.cases[0], **sizes))
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("bench.instructions needs Valgrind: apt-get install valgrind")
    print(f"{'case':<12} {'Interlude instr/req':>20} {'floor instr/req':>16} {'floor ÷ Interlude':>18}")
    for case in args.cases:
        interlude, floor = (count(case, app, **sizes) / args.requests for app in APPS)
        print(f"{case:<12} {interlude:>20,.0f} {floor:>16,.0f} {floor / interlude:>18.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
