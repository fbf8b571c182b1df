"""API benchmark: Interlude's GraphQL against a bare Starlette + asyncpg floor doing the same SQL, on PostgreSQL.

    .venv/bin/python -m bench.api                    (≈ 15 minutes and the soak)
    .venv/bin/python -m bench.api --quick            (a smoke run of a minute or two)

One scratch database (migrated, seeded with a clinic after a year of use: bench/api_seed.py, then ANALYZEd) serves
two servers that run for the whole benchmark, each a process of its own on a loopback port with a pool of 10
connections:

- Interlude exactly as deployed: `interlude serve`, production settings, jobs not in process, JSON logs at the
  production level written to a file;
- the floor (bench/floor_app.py): the same operations as bare Starlette handlers over an asyncpg pool, served by
  `serve`'s own code path, so with the same uvicorn options.

Each case (bench/cases.py) is loaded by a separate load-generator process (bench/load.py) for a warm-up and a
measured window, in rounds that alternate which app goes first; medians over the rounds are reported. Rows that
the write case adds are deleted after each of its runs (and the table vacuumed), so every run reads the same data.
SQL statements per request: Interlude's counted in-process (its own app over httpx.ASGITransport, Tortoise's
statement log counted without formatting a record), the floor's counted by the floor itself (GET /stats).
After the cases, the soak sends N requests to Interlude, the cases in turn, and reads its VmRSS every 10,000.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from tortoise.context import TortoiseContext

from api import migrations
from api.app import create_app
from api.container import build_services
from api.db import tortoise_config
from api.domain.actor import Role
from api.settings import Settings
from bench.api_seed import SeededClinic, seed_clinic
from bench.cases import APPS, CASES, SERIES_DAYS, Case, Fixture, PatientRef, Request, requests_for
from bench.measure import counting_sql
from bench.postgres import SERVER, analyze, scratch_database

ROOT = Path(__file__).resolve().parent.parent
POOL = "?minsize=10&maxsize=10"
HOST = "127.0.0.1"
READY_SECONDS = 60.0
STOP_SECONDS = 10.0
SOAK_CHUNK = 10_000
# Each case's GraphQL request is counted this many times in-process: the counts must not move.
COUNT_REPEATS = 3
# The longest an access token lives (api/settings.py); tokens are issued afresh for every load run.
TOKEN_MINUTES = 60


# --- the two servers -------------------------------------------------------------------------------------------


@dataclass
class Server:
    app: str
    port: int
    process: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def server_environment(url: str) -> dict[str, str]:
    """Production settings for both servers: a random key for this run, a metrics token (production requires
    one), tokens living as long as settings allow, jobs left to `interlude jobs` (not run here)."""
    return {
        "INTERLUDE_ENV": "production",
        "INTERLUDE_DATABASE_URL": url,
        "INTERLUDE_SECRET_KEY": secrets.token_urlsafe(48),
        "INTERLUDE_METRICS_TOKEN": secrets.token_urlsafe(24),
        "INTERLUDE_ACCESS_TOKEN_MINUTES": str(TOKEN_MINUTES),
        "INTERLUDE_JOBS_IN_PROCESS": "false",
        "INTERLUDE_HOST": HOST,
    }


def settings_of(environment: Mapping[str, str]) -> Settings:
    """The servers' settings as they read them from their environment, for the tokens and the in-process count."""
    return Settings.model_validate({key.removeprefix("INTERLUDE_").lower(): v for key, v in environment.items()})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# `--interlude-tree`: another checkout's Interlude (a "before" run), served from that tree with this venv.
OTHER_TREE: Path | None = None


def _command(app: str) -> list[str]:
    if app == "floor":
        return [sys.executable, "-m", "bench.floor_app"]
    if OTHER_TREE is not None:
        return [sys.executable, "-m", "api.cli", "serve"]
    # The console script, as deployed; `-m api.cli` where it is not installed.
    script = Path(sys.executable).with_name("interlude")
    return [str(script), "serve"] if script.exists() else [sys.executable, "-m", "api.cli", "serve"]


async def _start(app: str, environment: Mapping[str, str], logs: Path) -> Server:
    port = free_port()
    # Nothing of the caller's INTERLUDE_* settings reaches the servers: only this run's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLUDE_")}
    env.update(environment, INTERLUDE_PORT=str(port))
    cwd = ROOT
    if app == "interlude" and OTHER_TREE is not None:
        # First on the path: `api`, `schema` and `jobs` are imported from that tree, not from the editable install.
        cwd, env["PYTHONPATH"] = OTHER_TREE, str(OTHER_TREE)
    log = logs / f"{app}.log"
    with log.open("wb") as out:
        # A session of its own: Ctrl-C reaches the runner only, which then stops the servers by pid.
        process = await asyncio.create_subprocess_exec(
            *_command(app),
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    return Server(app, port, process, log)


async def _stop(server: Server) -> None:
    if server.process.returncode is not None:
        return
    server.process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(server.process.wait(), STOP_SECONDS)
    except TimeoutError:
        server.process.kill()
        await server.process.wait()


async def _wait_ready(server: Server) -> None:
    path = "/readyz" if server.app == "interlude" else "/healthz"
    deadline = time.monotonic() + READY_SECONDS
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{server.port}", timeout=5.0) as client:
        while time.monotonic() < deadline:
            if server.process.returncode is not None:
                raise RuntimeError(f"{server.app} exited with {server.process.returncode}:\n{_tail(server.log)}")
            try:
                if (await client.get(path)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{server.app} not ready after {READY_SECONDS:.0f} s:\n{_tail(server.log)}")


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@asynccontextmanager
async def servers(environment: Mapping[str, str], logs: Path) -> AsyncIterator[dict[str, Server]]:
    """Both servers, ready; stopped by pid however the block ends."""
    started: dict[str, Server] = {}
    try:
        for app in APPS:
            started[app] = await _start(app, environment, logs)
        await asyncio.gather(*(_wait_ready(s) for s in started.values()))
        yield started
    finally:
        await asyncio.gather(*(_stop(s) for s in started.values()))


def log_errors(logs: Path) -> dict[str, int]:
    """Lines logged at ERROR or CRITICAL by each server (JSON lines, api/logging.py)."""
    levels = ('"level": "error"', '"level": "critical"')
    return {
        log.stem: sum(1 for line in log.read_text(errors="replace").splitlines() if any(k in line for k in levels))
        for log in sorted(logs.glob("*.log"))
    }


def proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


# --- tokens and the fixture ------------------------------------------------------------------------------------


def fixture(settings: Settings, clinic: SeededClinic) -> Fixture:
    """Access tokens issued now, against the servers' wall clock, and what the requests need to know."""
    tokens = build_services(settings).accounts.tokens
    now = datetime.now(UTC)
    patients = []
    for p in clinic.patients:
        token, _ = tokens.issue(
            account_id=p.account_id, role=Role.PATIENT, clinic_id=clinic.clinic_id, patient_id=p.id, now=now
        )
        offset = now.astimezone(ZoneInfo(p.timezone)).utcoffset() or timedelta(0)
        patients.append(PatientRef(str(p.id), token, int(offset.total_seconds() // 60)))
    staff, _ = tokens.issue(
        account_id=clinic.clinician_id, role=Role.CLINICIAN, clinic_id=clinic.clinic_id, patient_id=None, now=now
    )
    to = now.date() + timedelta(days=1)
    return Fixture(
        clinic_id=str(clinic.clinic_id),
        clinician_id=str(clinic.clinician_id),
        clinician_token=staff,
        patients=tuple(patients),
        series_from=(to - timedelta(days=SERIES_DAYS)).isoformat(),
        series_to=to.isoformat(),
    )


# --- statements per request ------------------------------------------------------------------------------------


def _variants(case: Case) -> list[tuple[str, dict[str, Any]]]:
    base: list[tuple[str, dict[str, Any]]] = [("", {})]
    return base + [(f"{name}: {value}", {name: value}) for name, value in case.counted_variants]


async def interlude_statements(settings: Settings, fix: Fixture, cases: Sequence[Case]) -> dict[str, Any]:
    """Each case's GraphQL request through Interlude's own app, in this process (Tortoise already opened on the
    database), COUNT_REPEATS times; page-size variants show the count does not grow with the page."""
    app = create_app(settings, manage_orm=False)
    transport = httpx.ASGITransport(app=app, client=(HOST, 50000))
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        with counting_sql() as counter:
            for case in cases:
                token = _one_request(case, "interlude", fix).token
                for label, override in _variants(case):
                    counts, error = [], None
                    for _ in range(COUNT_REPEATS):
                        # Variables afresh each time: a write sent twice would be a resend.
                        variables = {**case.variables(fix, fix.patients[0]), **override}
                        body = {"query": case.document, "variables": variables}
                        counter.take()
                        response = await client.post("/graphql", json=body, headers=_headers(token))
                        error = error or _error_of(response.status_code, response.content)
                        counts.append(counter.take())
                    out[case.name + (f" ({label})" if label else "")] = {
                        "statements": [sum(c.values()) for c in counts],
                        "verbs": counts[-1],
                        "error": error,
                    }
    return out


def _headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "content-type": "application/json", "accept": "application/json"}


def _error_of(status: int, content: bytes) -> str | None:
    """The first error a response reports, briefly (bench data only: synthetic patients)."""
    if status == 200 and b'"errors"' not in content:
        return None
    try:
        errors = json.loads(content).get("errors") or [{}]
        first = errors[0]
        code = (first.get("extensions") or {}).get("code", "")
        return f"HTTP {status} {code}: {str(first.get('message', ''))[:160]}"
    except (ValueError, AttributeError):
        return f"HTTP {status}: {content[:160].decode(errors='replace')}"


def _one_request(case: Case, app: str, fix: Fixture) -> Request:
    requests = requests_for(case.name, app, fix, random.Random(0))
    if requests.make is not None:
        return requests.make()
    return requests.variants[0]


# --- one response of each case from both apps, before any load ---------------------------------------------------


async def precheck(servers_: Mapping[str, Server], fix: Fixture, cases: Sequence[Case]) -> dict[str, Any]:
    """Both apps answer each case, with the same number of items; the floor's statements per request (its own
    count). For reads of one patient the whole answers are compared too (writes differ by their new ids)."""
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=30.0) as client:
        for case in cases:
            answers: dict[str, Any] = {}
            row: dict[str, Any] = {}
            for app, server in servers_.items():
                base = f"http://{HOST}:{server.port}"
                before = await floor_stats(server) if app == "floor" else None
                request = _one_request(case, app, fix)
                response = await client.post(base + request.path, content=request.body, headers=_headers(request.token))
                row[f"{app}_error"] = _error_of(response.status_code, response.content)
                data = response.json().get("data") or {} if response.status_code == 200 else {}
                answers[app] = data
                row[f"{app}_items"] = case.items(data)
                if before is not None:
                    row["floor_statements"] = _delta(before, await floor_stats(server), case.name)
            row["same_items"] = row["interlude_items"] == row["floor_items"] and row["interlude_items"] > 0
            row["same_answer"] = None if case.writes else answers["interlude"] == answers["floor"]
            out[case.name] = row
    return out


def _delta(before: Mapping[str, Any], after: Mapping[str, Any], case: str) -> float:
    requests = after["requests"].get(case, 0) - before["requests"].get(case, 0)
    statements = after["statements"].get(case, 0) - before["statements"].get(case, 0)
    return statements / requests if requests else 0.0


# --- load runs -------------------------------------------------------------------------------------------------


async def load(server: Server, cases: Sequence[str], fix: Fixture, **window: float) -> dict[str, Any]:
    """One load-generator process against one server; its JSON result."""
    spec = {"host": HOST, "port": server.port, "app": server.app, "cases": list(cases), "server_pid": server.pid}
    spec.update(window, fixture=fix.to_json())
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.load", cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    try:
        out, _ = await process.communicate(json.dumps(spec).encode())
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"the load generator failed with exit code {process.returncode}")
    result: dict[str, Any] = json.loads(out)
    return result


class Database:
    """The benchmark's own connection to the scratch database, between runs."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def forget_writes(self, since: datetime) -> int:
        """Deletes the entries written since `since` (the seeded ones are older) and vacuums: each run reads the
        data the seed left. Returns how many there were."""
        conn = await asyncpg.connect(self.url)
        try:
            deleted = await conn.execute("DELETE FROM diary_entry WHERE created_at >= $1", since)
            await conn.execute("VACUUM ANALYZE diary_entry")
        finally:
            await conn.close()
        return int(deleted.split()[-1])


@dataclass
class Plan:
    cases: list[Case]
    rounds: int
    warmup: float
    seconds: float
    connections: int
    soak: int
    # --profile: a folder for py-spy's samples of Interlude, one extra unreported run per case.
    profile: Path | None = None


async def rounds(
    plan: Plan, servers_: Mapping[str, Server], clinic: SeededClinic, settings: Settings, db: Database
) -> list[dict[str, Any]]:
    runs = []
    for number in range(plan.rounds):
        order = APPS if number % 2 == 0 else APPS[::-1]
        for case in plan.cases:
            for app in order:
                runs.append(
                    await _measured(
                        plan, servers_[app], case, number=number + 1, clinic=clinic, settings=settings, db=db
                    )
                )
    return runs


async def _measured(
    plan: Plan, server: Server, case: Case, *, number: int, clinic: SeededClinic, settings: Settings, db: Database
) -> dict[str, Any]:
    print(f"  round {number}: {case.name} on {server.app} …", file=sys.stderr, flush=True)
    floor = server.app == "floor"
    before = await floor_stats(server) if floor else None
    since = datetime.now(UTC)
    window = {"warmup": plan.warmup, "seconds": plan.seconds, "connections": plan.connections}
    result = await load(server, [case.name], fixture(settings, clinic), **window)
    result.update(round=number, case=case.name)
    if before is not None:
        result["statements_per_request"] = _delta(before, await floor_stats(server), case.name)
    if case.writes:
        result["rows_written"] = await db.forget_writes(since)
    return result


async def profiled(plan: Plan, server: Server, clinic: SeededClinic, settings: Settings, db: Database) -> list[str]:
    """One more run of each case against Interlude, not reported, while py-spy samples the server (`raw`: one
    line per distinct stack and its count, read by bench/profile.py). Returns the files written."""
    assert plan.profile is not None
    plan.profile.mkdir(parents=True, exist_ok=True)
    written = []
    for case in plan.cases:
        print(f"  profiling {case.name} on {server.app} …", file=sys.stderr, flush=True)
        out = plan.profile / f"{server.app}-{case.name}.txt"
        since = datetime.now(UTC)
        window = {"warmup": plan.warmup, "seconds": plan.seconds, "connections": plan.connections}
        running = asyncio.create_task(load(server, [case.name], fixture(settings, clinic), **window))
        await asyncio.sleep(plan.warmup)
        spy = await asyncio.create_subprocess_exec(
            *_py_spy(),
            "record",
            "--pid",
            str(server.pid),
            "--duration",
            str(max(1, int(plan.seconds))),
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await spy.wait()
        await running
        if case.writes:
            await db.forget_writes(since)
        if spy.returncode != 0:
            raise RuntimeError(f"py-spy failed with exit code {spy.returncode} (it needs ptrace: run as root)")
        written.append(str(out))
    return written


def _py_spy() -> list[str]:
    script = Path(sys.executable).with_name("py-spy")
    return [str(script)] if script.exists() else ["py-spy"]


async def floor_stats(server: Server) -> dict[str, Any]:
    """The floor's own count of requests and statements per case."""
    async with httpx.AsyncClient() as client:
        stats: dict[str, Any] = (await client.get(f"http://{HOST}:{server.port}/stats")).json()
    return stats


async def soak(plan: Plan, server: Server, clinic: SeededClinic, settings: Settings) -> dict[str, Any]:
    """N requests to Interlude, the cases in turn, in chunks of 10,000 (fresh tokens for each: a slow soak must not
    outlive them); VmRSS after each chunk."""
    names = [c.name for c in plan.cases]
    samples = [(0, proc_status_kib(server.pid, "VmRSS"))]
    errors: dict[str, int] = {}
    error_samples: list[Any] = []
    started = time.perf_counter()
    done = ok = 0
    while done < plan.soak:
        chunk = min(SOAK_CHUNK, plan.soak - done)
        print(f"  soak: requests {done:,}–{done + chunk:,} …", file=sys.stderr, flush=True)
        window = {"requests": chunk, "connections": plan.connections}
        result = await load(server, names, fixture(settings, clinic), **window)
        done += chunk
        ok += result["ok"]
        samples.append((done, proc_status_kib(server.pid, "VmRSS")))
        for name, n in {**result["errors_by_case"]}.items():
            errors[name] = errors.get(name, 0) + n
        error_samples = error_samples or result["error_samples"]
    return {
        "requests": done,
        "ok": ok,
        "seconds": time.perf_counter() - started,
        "rss_kib": samples,
        "errors_by_case": errors,
        "error_samples": error_samples,
    }


# --- the report ------------------------------------------------------------------------------------------------


def summary(runs: Sequence[Mapping[str, Any]], cases: Sequence[Case]) -> dict[str, Any]:
    """Per case and app, medians over the rounds; errors summed over every run, in and outside the window."""
    out: dict[str, Any] = {}
    for case in cases:
        row: dict[str, Any] = {}
        for app in APPS:
            mine = [r for r in runs if r["case"] == case.name and r["app"] == app]
            if not mine:
                continue
            row[app] = {
                "rps": _median(r["rps"] for r in mine),
                "p50_ms": _median(r["p50_ms"] for r in mine),
                "p99_ms": _median(r["p99_ms"] for r in mine),
                "server_cpu_us": _median(_per_request(r["server_cpu_s"], r) for r in mine),
                "loadgen_cpu_us": _median(_per_request(r["loadgen_cpu_s"], r) for r in mine),
                "errors": sum(r["errors"] + r["outside_errors"] for r in mine),
                "rounds": [round(r["rps"]) for r in mine],
            }
        if "interlude" in row and "floor" in row and row["floor"]["rps"]:
            row["rps_ratio"] = row["interlude"]["rps"] / row["floor"]["rps"]
            floor_p99 = row["floor"]["p99_ms"]
            row["p99_ratio"] = row["interlude"]["p99_ms"] / floor_p99 if floor_p99 else None
        out[case.name] = row
    return out


def _median(values: Any) -> float:
    listed = list(values)
    return float(statistics.median(listed)) if listed else 0.0


def _per_request(seconds: float, run: Mapping[str, Any]) -> float:
    requests = run["ok"] + run["errors"]
    return seconds / requests * 1e6 if requests else 0.0


def print_report(figures: Mapping[str, Any]) -> None:
    env = figures["environment"]
    served = env.get("interlude_code", env["code"])
    print(f"\nInterlude API benchmark — code {env['code']}, Interlude served from {served}, {env['started']}")
    print(
        f"machine: {env['cpus']} CPUs ({env['cpu_model']}), Python {env['python']}, PostgreSQL {env['postgresql']}; "
        f"load average {env['load_average_at_start']} at start, {env['load_average_at_end']} at the end"
    )
    plan = figures["plan"]
    print(
        f"{plan['patients']} patients × {plan['days']} days ({figures['seed']['rows']}), seeded in "
        f"{figures['seed']['seconds']:.1f} s; {plan['connections']} connections, {plan['warmup']:g} s warm-up + "
        f"{plan['seconds']:g} s measured, {plan['rounds']} round(s), medians"
    )
    _print_cases(figures)
    _print_statements(figures)
    _print_memory(figures)


def _print_cases(figures: Mapping[str, Any]) -> None:
    statements = figures["statements"]
    print(
        f"\n{'case':<11} {'app':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11} "
        f"{'loadgen µs/req':>15} {'errors':>7} {'SQL/req':>8}  req/s by round"
    )
    for name, row in figures["summary"].items():
        for app in APPS:
            if app not in row:
                continue
            r = row[app]
            sql = statements.get(name, {}).get(app, "")
            print(
                f"{name:<11} {app:<10} {r['rps']:>8,.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                f"{r['server_cpu_us']:>11,.0f} {r['loadgen_cpu_us']:>15,.0f} {r['errors']:>7,} {sql!s:>8}  "
                + " / ".join(f"{x:,}" for x in r["rounds"])
            )
        if "rps_ratio" in row:
            p99 = f"{row['p99_ratio']:.2f}×" if row.get("p99_ratio") is not None else "–"
            ratio = f"{row['rps_ratio']:>8.3f}"
            print(f"{'':<11} {'ratio':<10} {ratio}   (Interlude ÷ floor req/s; p99 Interlude ÷ floor {p99})")
    for name, check in figures["precheck"].items():
        problems = [f"{app}: {check[f'{app}_error']}" for app in APPS if check.get(f"{app}_error")]
        if not check["same_items"]:
            problems.append(f"items differ: Interlude {check['interlude_items']}, floor {check['floor_items']}")
        if check["same_answer"] is False:
            problems.append("answers differ (same patient, same parameters)")
        for problem in problems:
            print(f"PROBLEM {name}: {problem}")
    for run in figures["runs"]:
        for sample in run["error_samples"][:1]:
            print(f"first error, {run['case']} on {run['app']} (round {run['round']}): {sample}")
        if "rows_written" in run and run["rows_written"] != run["ok"] + run["outside_ok"]:
            print(
                f"PROBLEM {run['case']} on {run['app']} (round {run['round']}): {run['rows_written']:,} rows written "
                f"for {run['ok'] + run['outside_ok']:,} successful writes"
            )


def _print_statements(figures: Mapping[str, Any]) -> None:
    print("\nSQL statements per request (BEGIN/COMMIT not counted; Interlude counted in-process, 3 requests each):")
    if figures["environment"].get("interlude_code") != figures["environment"]["code"]:
        print("  (Interlude's counted with this checkout's code, not the one --interlude-tree served)")
    for label, row in figures["interlude_statements"].items():
        verbs = ", ".join(f"{k} {v}" for k, v in sorted(row["verbs"].items()))
        error = f"  ERROR {row['error']}" if row["error"] else ""
        print(f"  Interlude {label:<24} {' / '.join(map(str, row['statements'])):<10} ({verbs}){error}")
    for name, check in figures["precheck"].items():
        print(f"  floor     {name:<24} {check.get('floor_statements', 0):g}")


def _print_memory(figures: Mapping[str, Any]) -> None:
    hwm = figures["peak_rss_kib"]
    print("\npeak RSS (VmHWM at the end): " + ", ".join(f"{app} {_mib(kib)}" for app, kib in hwm.items()))
    errors = figures.get("log_errors", {})
    print("server log lines at ERROR or above: " + ", ".join(f"{app} {n}" for app, n in errors.items()))
    soaked = figures.get("soak")
    if not soaked:
        return
    samples = soaked["rss_kib"]
    print(
        f"soak: {soaked['requests']:,} requests to Interlude in {soaked['seconds']:.0f} s, errors "
        f"{sum(soaked['errors_by_case'].values()):,} {soaked['errors_by_case'] or ''}"
    )
    print("  VmRSS: " + ", ".join(f"{n // 1000:,}k {_mib(kib)}" for n, kib in samples))
    at = dict(samples)
    if 50_000 in at and 100_000 in at:
        growth = at[100_000] - at[50_000]
        print(f"  at 50k {_mib(at[50_000])}, at 100k {_mib(at[100_000])}: growth {growth / 1024:+.1f} MiB")
    else:
        print(f"  growth over the soak: {(samples[-1][1] - samples[0][1]) / 1024:+.1f} MiB")


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


# --- the machine and the code -----------------------------------------------------------------------------------


async def environment() -> dict[str, str]:
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        version = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    return {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        # Interlude's own code when it is served from another checkout (--interlude-tree).
        "interlude_code": code_version(OTHER_TREE) if OTHER_TREE is not None else code_version(),
        "cpus": str(os.cpu_count()),
        "cpu_model": _cpu_model(),
        "python": sys.version.split()[0],
        "postgresql": version,
        "load_average_at_start": _load_average(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def code_version(tree: Path = ROOT) -> str:
    """The commit, plus a digest of uncommitted changes to what is measured: a result names what it measured."""
    git = shutil.which("git")
    if git is None:
        return "unknown"
    # Fixed arguments, no shell: nothing here comes from outside.
    head = subprocess.run([git, "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, check=False)  # noqa: S603
    diff = subprocess.run(  # noqa: S603
        [git, "diff", "HEAD", "--", "api", "schema", "jobs", "bench"], cwd=tree, capture_output=True, check=False
    )
    version = head.stdout.decode().strip() or "unknown"
    return f"{version}+uncommitted:{hashlib.sha256(diff.stdout).hexdigest()[:8]}" if diff.stdout else version


# --- the whole run ---------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    # SIGTERM as Ctrl-C: the run unwinds, stopping the servers and dropping the scratch database.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    plan = Plan(
        cases=[CASES[name] for name in args.cases],
        rounds=args.rounds,
        warmup=args.warmup,
        seconds=args.seconds,
        connections=args.connections,
        soak=args.soak,
        profile=args.profile,
    )
    figures: dict[str, Any] = {"environment": await environment(), "plan": _plan_figures(plan, args)}
    print(f"Interlude API benchmark: code {figures['environment']['code']}", file=sys.stderr, flush=True)
    async with AsyncExitStack() as stack:
        _, url = await stack.enter_async_context(scratch_database())
        env = server_environment(url + POOL)
        settings = settings_of(env)
        await migrations.apply(url)
        clinic = await _prepare(url, settings, plan, args, figures)
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="interlude-bench-")))
        # Runs once the servers have stopped (shutdown included), before their logs are removed.
        stack.callback(lambda: figures.update(log_errors=log_errors(logs)))
        started = await stack.enter_async_context(servers(env, logs))
        figures["precheck"] = await precheck(started, fixture(settings, clinic), plan.cases)
        figures["runs"] = await rounds(plan, started, clinic, settings, Database(url))
        if plan.profile is not None:
            figures["profiles"] = await profiled(plan, started["interlude"], clinic, settings, Database(url))
        if plan.soak:
            figures["soak"] = await soak(plan, started["interlude"], clinic, settings)
        figures["peak_rss_kib"] = {app: proc_status_kib(s.pid, "VmHWM") for app, s in started.items()}
    figures["environment"]["load_average_at_end"] = _load_average()
    figures["summary"] = summary(figures["runs"], plan.cases)
    figures["statements"] = _statements_per_case(figures)
    return figures


async def _prepare(
    url: str, settings: Settings, plan: Plan, args: argparse.Namespace, figures: dict[str, Any]
) -> SeededClinic:
    """Seeds, ANALYZEs, counts Interlude's statements per case in-process, and forgets what the counting wrote."""
    with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        try:
            print(f"  seeding {args.patients} patients × {args.days} days …", file=sys.stderr, flush=True)
            started = time.perf_counter()
            clinic = await seed_clinic(args.patients, args.days, now=datetime.now(UTC))
            figures["seed"] = {"seconds": time.perf_counter() - started, "rows": clinic.rows}
            await analyze(url)
            since = datetime.now(UTC)
            figures["interlude_statements"] = await interlude_statements(
                settings, fixture(settings, clinic), plan.cases
            )
        finally:
            await ctx.close_connections()
    await Database(url).forget_writes(since)
    return clinic


def _plan_figures(plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "command": " ".join(["python -m bench.api", *sys.argv[1:]]),
        "patients": args.patients,
        "days": args.days,
        "cases": [c.name for c in plan.cases],
        "rounds": plan.rounds,
        "warmup": plan.warmup,
        "seconds": plan.seconds,
        "connections": plan.connections,
        "soak": plan.soak,
    }


def _statements_per_case(figures: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, check in figures["precheck"].items():
        interlude = figures["interlude_statements"].get(name, {}).get("statements", [])
        out[name] = {"interlude": interlude[-1] if interlude else None, "floor": check.get("floor_statements")}
    return out


def failures(figures: Mapping[str, Any]) -> list[str]:
    """What makes the run fail: any error, any disagreement between the apps, any write not stored once."""
    found = []
    for name, row in figures["summary"].items():
        for app in APPS:
            if row.get(app, {}).get("errors"):
                found.append(f"{name} on {app}: {row[app]['errors']} errors")
    for run in figures["runs"]:
        if not run["ok"] or run["hung_connections"]:
            found.append(f"{run['case']} on {run['app']}, round {run['round']}: nothing answered, or connections hung")
    for name, check in figures["precheck"].items():
        if not check["same_items"] or check["interlude_error"] or check["floor_error"]:
            found.append(f"{name}: the apps' first answers disagree or fail")
    for label, row in figures["interlude_statements"].items():
        if row["error"]:
            found.append(f"{label}: Interlude refused the request while statements were counted")
    for app, lines in figures.get("log_errors", {}).items():
        if lines:
            found.append(f"{app}: {lines} lines logged at ERROR or above")
    soaked = figures.get("soak") or {}
    if sum(soaked.get("errors_by_case", {}).values()) or soaked.get("ok", 0) != soaked.get("requests", 0):
        found.append("soak: errors, or requests without an answer")
    return found


# --- command line ----------------------------------------------------------------------------------------------

QUICK = {"seconds": 2.0, "warmup": 1.0, "rounds": 1, "soak": 2000}
DEFAULTS = {"seconds": 20.0, "warmup": 5.0, "rounds": 3, "soak": 100_000}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--days", type=int, default=365, help="diary days per patient")
    parser.add_argument("--seconds", type=float, help=f"measured seconds per run (default {DEFAULTS['seconds']:g})")
    parser.add_argument("--warmup", type=float, help=f"warm-up seconds per run (default {DEFAULTS['warmup']:g})")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--rounds", type=int, help=f"rounds, alternating the apps' order (default {DEFAULTS['rounds']})"
    )
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument(
        "--soak", type=int, help=f"requests to Interlude after the cases (default {DEFAULTS['soak']:,})"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: " + ", ".join(f"{k} {v}" for k, v in QUICK.items())
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument(
        "--profile",
        type=Path,
        help="after the rounds, one more (unreported) run per case against Interlude with py-spy sampling it; "
        "its stacks are written to this folder (summarise them with `python -m bench.profile`)",
    )
    parser.add_argument(
        "--interlude-tree",
        type=Path,
        help="serve Interlude from this checkout (e.g. `git worktree add /tmp/before <commit>`) for a before/after "
        "comparison; statements are still counted with this checkout's code",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for key, default in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, QUICK[key] if args.quick else default)
    global OTHER_TREE  # noqa: PLW0603 -- read by _command and _start, set once before anything starts
    OTHER_TREE = args.interlude_tree.resolve() if args.interlude_tree else None
    try:
        figures = asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: the servers were stopped and the scratch database dropped", file=sys.stderr)
        return 130
    print_report(figures)
    problems = failures(figures)
    figures["failures"] = problems
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
