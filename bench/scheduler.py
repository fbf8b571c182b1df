"""Scheduler benchmark: plan a 7-day horizon for N patients, then dispatch a day of pushes, on PostgreSQL.

    .venv/bin/python -m bench.scheduler --patients 2500 10000

For each patient count: a fresh database (created, migrated, dropped at the end), seeded with bulk inserts; then
each measured phase runs in a child process of its own (`--phase`), so the peak RSS it reports is that phase's:

- idle:     the jobs process at rest (imports, Tortoise context, one query): the memory floor;
- seed:     bulk inserts (not a measured figure, only timed for the record);
- plan:     `plan_all(policy, now=NOW)`: prompts created per second;
- replan:   the same pass again at the same `now`: idempotent, creates nothing;
- dispatch: the steps of `jobs.passes.dispatch` (`release_due`, `queue_reminders`, `deliver`, `log` provider), on a
            simulated clock every 15 minutes for 24 hours from NOW, repeated at each tick until nothing is left;
            each tick first runs the expire pass (`expire_due`), as the jobs process does.

Floors (raw asyncpg, same rows, same run) give the ratios; see bench/floor.py.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import json
import os
import pstats
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any, TypeVar

import asyncpg
from tortoise.context import TortoiseContext

from api import migrations
from api.container import build_job_config
from api.db import tortoise_config
from api.domain.prompt.scheduling import plan_all
from api.domain.prompt.service import expire_due
from api.domain.push import outbox
from api.logging import configure_logging
from api.settings import Settings
from bench import floor
from bench.measure import PhaseResult, counting_sql, peak_rss_kib
from bench.postgres import SERVER, analyze, scratch_database
from bench.seed import seed
from jobs.passes import JobConfig

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POOL = "?minsize=1&maxsize=10"
PLAN_GOAL_SECONDS = 60.0
GOAL_PATIENTS = 10_000
# A tick repeats while it still finds work; this bounds a tick that never settles (it would be a bug).
MAX_ROUNDS_PER_TICK = 10_000

T = TypeVar("T")


@dataclass
class Run:
    patients: int
    database: str
    phases: dict[str, PhaseResult] = field(default_factory=dict)
    # Transactions committed in the run's database (pg_stat_database.xact_commit): a statement outside a
    # transaction counts as one, and so does the reset asyncpg's pool runs when a connection goes back to it.
    xacts: dict[str, int] = field(default_factory=dict)
    floors: dict[str, dict[str, float]] = field(default_factory=dict)


# --- child: one phase in this process --------------------------------------------------------------------------

Work = Callable[[JobConfig, argparse.Namespace], Awaitable[dict[str, int]]]


async def _idle(config: JobConfig, args: argparse.Namespace) -> dict[str, int]:
    return {}


async def _seed(config: JobConfig, args: argparse.Namespace) -> dict[str, int]:
    return asdict(await seed(args.patients[0], now=args.now))


async def _plan(config: JobConfig, args: argparse.Namespace) -> dict[str, int]:
    report = await plan_all(config.scheduling, now=args.now)
    return {k: v for k, v in asdict(report).items() if isinstance(v, int)}


async def _dispatch(config: JobConfig, args: argparse.Namespace) -> dict[str, int]:
    """The dispatch pass on a simulated clock; each tick repeats it until a round finds nothing to do.

    Each tick first runs the expire pass, as the jobs process does every minute: without it, prompts whose window
    closed would stay SENT and every reminder query would wade through them.
    """
    totals: Counter[str] = Counter()
    clock, end = args.now, args.now + timedelta(hours=args.dispatch_hours)
    while clock <= end:
        while expired := await _timed(totals, "expire", expire_due(now=clock)):
            totals["expired"] += expired
        for _ in range(MAX_ROUNDS_PER_TICK):
            totals["rounds"] += 1
            if not await _dispatch_round(config, clock, totals):
                break
        totals["ticks"] += 1
        clock += timedelta(minutes=args.step_minutes)
    return dict(totals)


async def _dispatch_round(config: JobConfig, clock: datetime, totals: Counter[str]) -> bool:
    """`jobs.passes.dispatch`, step by step, each step timed. True when it found work."""
    released = await _timed(totals, "release_due", outbox.release_due(config.delivery, now=clock))
    reminded = await _timed(totals, "queue_reminders", outbox.queue_reminders(config.delivery, now=clock))
    delivered = await _timed(totals, "deliver", outbox.deliver(config.providers, config.delivery, now=clock))
    for report in (asdict(released), asdict(reminded), asdict(delivered)):
        totals.update({k: v for k, v in report.items() if isinstance(v, int)})
    return bool(released.released or released.deferred or reminded.queued or reminded.reminders or delivered.claimed)


async def _timed(totals: Counter[str], step: str, call: Awaitable[T]) -> T:
    """Awaits the call, adding its wall time to `totals[step + "_ms"]`."""
    start = perf_counter()
    try:
        return await call
    finally:
        totals[f"{step}_ms"] += round((perf_counter() - start) * 1000)


WORK: dict[str, Work] = {"idle": _idle, "seed": _seed, "plan": _plan, "replan": _plan, "dispatch": _dispatch}


async def _phase(args: argparse.Namespace, profiler: cProfile.Profile | None) -> PhaseResult:
    url = args.url
    if args.phase == "seed":
        await migrations.apply(url)
    config = build_job_config(Settings(database_url=url))
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url + POOL))
        await migrations.check_connection()
        with counting_sql() as sql:
            start = perf_counter()
            if profiler is not None:
                profiler.enable()
            try:
                counts = await WORK[args.phase](config, args)
            finally:
                if profiler is not None:
                    profiler.disable()
            return PhaseResult(args.phase, perf_counter() - start, counts, sql.take())


def _child(args: argparse.Namespace) -> int:
    profiler = cProfile.Profile() if args.profile is not None else None
    # As in `interlude jobs`: JSON logs at INFO (here into /dev/null, so formatting is paid but not the terminal).
    with open(os.devnull, "w") as sink:
        configure_logging("INFO", stream=sink)
        result = asyncio.run(_phase(args, profiler))
        result.maxrss_kib = peak_rss_kib()
    if profiler is not None:
        _write_profile(profiler, args.profile, f"{args.phase}-{args.patients[0]}")
    print(json.dumps(asdict(result)))
    return 0


def _write_profile(profiler: cProfile.Profile, directory: Path, name: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(directory / f"{name}.prof")
    with (directory / f"{name}.txt").open("w") as out:
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)


# --- parent: databases, children, floors, the table ------------------------------------------------------------


async def _bench(patients: int, args: argparse.Namespace) -> Run:
    async with scratch_database() as (name, url):
        run = Run(patients, name)
        for phase in ("idle", "seed"):
            await _measured(run, phase, url, args)
        await analyze(url)
        for phase in ("plan", "replan"):
            await _measured(run, phase, url, args)
        run.floors["plan"] = await floor.plan_floor(url)
        await analyze(url)
        await _measured(run, "dispatch", url, args)
        run.floors["dispatch"] = await floor.dispatch_floor(url)
    return run


async def _measured(run: Run, phase: str, url: str, args: argparse.Namespace) -> None:
    print(f"  {run.patients:>6} patients: {phase} …", file=sys.stderr, flush=True)
    before = await _server_stats(run.database)
    run.phases[phase] = await _spawn(phase, url, run.patients, args)
    # Backends flush their statistics when they exit; give the child's a moment to go.
    await asyncio.sleep(1.0)
    after = await _server_stats(run.database)
    run.xacts[phase] = after - before


async def _spawn(phase: str, url: str, patients: int, args: argparse.Namespace) -> PhaseResult:
    command = [sys.executable, "-m", "bench.scheduler", "--phase", phase, "--url", url, "--patients", str(patients)]
    command += ["--now", args.now.isoformat(), "--dispatch-hours", str(args.dispatch_hours)]
    command += ["--step-minutes", str(args.step_minutes)]
    if args.profile is not None:
        command += ["--profile", str(args.profile)]
    child = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"phase {phase} failed with exit code {child.returncode}")
    data: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return PhaseResult(**data)


async def _server_stats(database: str) -> int:
    """Transactions committed in this database so far (read from another database, so the read adds none)."""
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        commits = await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", database)
        return int(commits or 0)
    finally:
        await conn.close()


async def _environment() -> dict[str, str]:
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        version = await conn.fetchval("SHOW server_version")
        busy = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return {
        "postgresql": str(version),
        "python": sys.version.split()[0],
        "cpus": str(os.cpu_count()),
        "other_active_queries": str(busy),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def code_version() -> str:
    """The commit, plus a digest of uncommitted changes to the measured code: a result names what it measured."""
    root = Path(__file__).resolve().parent.parent
    git = shutil.which("git")
    if git is None:
        return "unknown"
    # Fixed arguments, no shell: nothing here comes from outside.
    head = subprocess.run([git, "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, check=False)  # noqa: S603
    diff = subprocess.run([git, "diff", "HEAD", "--", "api", "jobs"], cwd=root, capture_output=True, check=False)  # noqa: S603
    version = head.stdout.decode().strip() or "unknown"
    return f"{version}+uncommitted:{hashlib.sha256(diff.stdout).hexdigest()[:8]}" if diff.stdout else version


async def _main(args: argparse.Namespace, code: str) -> dict[str, Any]:
    """Every run, printed as it finishes; returns all the figures."""
    env = await _environment()
    env["code"] = code
    print(
        f"Interlude scheduler benchmark: code {code}, now={args.now.isoformat()}, Python {env['python']}, "
        f"PostgreSQL {env['postgresql']}, {env['cpus']} CPUs "
        f"(at start: load average {env['load_average']}, other active queries {env['other_active_queries']})",
        flush=True,
    )
    runs = []
    for patients in args.patients:
        run = await _bench(patients, args)
        _print_run(run)
        runs.append(run)
    if len(runs) > 1:
        _print_scaling(runs)
    env["load_average_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average at the end: {env['load_average_at_end']} (other work on these cores slows every phase)")
    return {"environment": env, "runs": [asdict(r) for r in runs]}


# --- the table -------------------------------------------------------------------------------------------------


def _print_run(run: Run) -> None:
    p = run.phases
    work = {
        "idle": ("", 0),
        "seed": ("patients", p["seed"].counts.get("patients", 0)),
        "plan": ("prompts created", p["plan"].counts.get("created", 0)),
        "replan": ("patients re-planned", p["replan"].counts.get("patients", 0)),
        "dispatch": ("messages accepted", p["dispatch"].counts.get("accepted", 0)),
    }
    print(f"\n{run.patients:,} patients")
    head = f"{'phase':<9} {'seconds':>8}  {'work':>28}  {'per second':>10}  {'SQL':>7} {'SELECT':>7} {'INSERT':>7}"
    print(head + f" {'UPDATE':>7} {'xacts':>8} {'peak RSS':>10}")
    for phase, result in p.items():
        label, amount = work[phase]
        rate = f"{amount / result.seconds:,.0f}" if amount and result.seconds else ""
        what = f"{amount:,} {label}" if label else ""
        sql = result.sql
        seconds = f"{result.seconds:.2f}" if phase != "idle" else ""
        print(
            f"{phase:<9} {seconds:>8}  {what:>28}  {rate:>10}  {sum(sql.values()):>7,} {sql.get('SELECT', 0):>7,} "
            f"{sql.get('INSERT', 0):>7,} {sql.get('UPDATE', 0):>7,} {run.xacts.get(phase, 0):>8,} "
            f"{_mib(result.maxrss_kib):>10}"
        )
    _print_details(run)


def _print_details(run: Run) -> None:
    plan, replan, dispatched = run.phases["plan"], run.phases["replan"], run.phases["dispatch"]
    c = plan.counts
    print(f"plan:     {c.get('created', 0):,} created, {c.get('moved', 0)} moved, {c.get('cancelled', 0)} cancelled")
    c = replan.counts
    print(f"replan:   {c.get('created', 0):,} created, {c.get('moved', 0)} moved, {c.get('cancelled', 0)} cancelled")
    c = dispatched.counts
    print(
        f"dispatch: {c.get('released', 0):,} prompts released ({c.get('late', 0):,} late, "
        f"{c.get('deferred', 0):,} deferred), {c.get('reminders', 0):,} reminders, {c.get('queued', 0):,} queued, "
        f"{c.get('accepted', 0):,} accepted, {c.get('dropped', 0):,} dropped; "
        f"{c.get('ticks', 0)} ticks, {c.get('rounds', 0)} rounds"
    )
    steps = ("expire", "release_due", "queue_reminders", "deliver")
    print("dispatch time by step: " + ", ".join(f"{k} {c.get(k + '_ms', 0) / 1000:.1f} s" for k in steps))
    print(f"          {c.get('expired', 0):,} prompts expired by the expire pass run at each tick")
    rows = _floor_rows(run)
    if rows:
        print(f"{'baseline (raw asyncpg, the same rows, this run)':<68} {'seconds':>8} {'phase ÷ baseline':>17}")
    for label, measured, seconds in rows:
        print(f"{label:<68} {seconds:>8.2f} {measured / seconds:>16.1f}×")
    if run.patients == GOAL_PATIENTS:
        verdict = "met" if plan.seconds < PLAN_GOAL_SECONDS else "NOT met"
        print(
            f"goal: {GOAL_PATIENTS:,}-patient horizon in < {PLAN_GOAL_SECONDS:.0f} s: {verdict} ({plan.seconds:.1f} s)"
        )


def _floor_rows(run: Run) -> list[tuple[str, float, float]]:
    plan, dispatched = run.phases["plan"].seconds, run.phases["dispatch"].seconds
    rows: list[tuple[str, float, float]] = []
    pf, df = run.floors.get("plan", {}), run.floors.get("dispatch", {})
    if pf:
        prompts = f"{int(pf['rows']):,} prompts"
        rows.append((f"plan: COPY {prompts}, 1 transaction", plan, pf["copy"]))
        rows.append((f"plan: INSERT {prompts} (executemany), 1 transaction", plan, pf["executemany"]))
        per_patient = pf["commit_per_patient"]
        rows.append((f"plan: INSERT {prompts} (executemany), 1 transaction per patient", plan, per_patient))
    if df:
        writes = f"COPY {int(df['messages']):,} messages, UPDATE them and {int(df['prompts']):,} prompts"
        rows.append((f"dispatch: {writes}", dispatched, df["one_transaction"]))
    return rows


def _print_scaling(runs: Sequence[Run]) -> None:
    first, last = runs[0], runs[-1]
    print(f"\nmemory as patients grow ({first.patients:,} → {last.patients:,}, ×{last.patients / first.patients:g}):")
    for phase in ("idle", "plan", "replan", "dispatch"):
        a, b = first.phases[phase].maxrss_kib, last.phases[phase].maxrss_kib
        idle_a, idle_b = first.phases["idle"].maxrss_kib, last.phases["idle"].maxrss_kib
        print(
            f"  {phase:<9} peak RSS {_mib(a)} → {_mib(b)} (×{b / a:.2f}); "
            f"above idle {_mib(a - idle_a)} → {_mib(b - idle_b)}"
        )


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


# --- command line ----------------------------------------------------------------------------------------------


def _instant(value: str) -> datetime:
    instant = datetime.fromisoformat(value)
    if instant.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"give the time with an offset: {value!r}")
    return instant.astimezone(UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.scheduler", description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[GOAL_PATIENTS], help="one run per count")
    parser.add_argument("--now", type=_instant, default=NOW, help="the fixed clock (ISO-8601 with offset)")
    parser.add_argument("--dispatch-hours", type=int, default=24, help="simulated dispatch span")
    parser.add_argument("--step-minutes", type=int, default=15, help="simulated dispatch tick")
    parser.add_argument("--profile", type=Path, help="write a cProfile of each phase into this folder")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--phase", choices=sorted(WORK), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.phase:
        return _child(args)
    code = code_version()
    figures = asyncio.run(_main(args, code))
    if code_version() != code:
        print(f"warning: api/ or jobs/ changed during the run (was {code}, now {code_version()})", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
