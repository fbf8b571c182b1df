"""What the resilience tests share: scratch PostgreSQL databases, the real server as a subprocess, simulated phones,
a TCP proxy that can cut the server off from PostgreSQL, and the exactly-once check over what was stored.

Everything is loopback and bounded: each wait has a deadline, and a phone gives up (failing the test) rather than
retry forever.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import secrets
import signal
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import asyncpg
import httpx

from tests.conftest import POSTGRES, repo_root
from tests.factories import PASSWORD
from tests.resilience.seed import JOINED

HOST = "127.0.0.1"
INTERLUDE = Path(sys.executable).parent / "interlude"
SECRET_KEY = "resilience-secret-key-that-is-long-enough-0123"
# Longest a phone waits for one answer. A request still unanswered then counts as hung: the test fails.
REQUEST_TIMEOUT = 20.0
READINESS_TIMEOUT = 1.0

LOGIN = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }"
LOG = "mutation($input: DiaryEntryInput!) { logDiaryEntry(input: $input) { id clientId painNow } }"
SYNC = """mutation($entries: [DiaryEntryInput!]!) {
  syncDiaryEntries(entries: $entries) { clientId status entry { id clientId painNow } error { code } }
}"""
ACKNOWLEDGED = ("CREATED", "UNCHANGED")
SIDE_EFFECTS = ("NAUSEA", "DIZZINESS", "HEADACHE", "DISSOCIATION", "FATIGUE", "VIVID_DREAMS")
# A side effect that raises a critical alert in the entry's own transaction: the write spans several tables.
RED_FLAG = {"code": "CHEST_PAIN", "severity": 3}
EASTERN = timezone(timedelta(hours=-5))


# ---- databases


async def admin(statement: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(f"{POSTGRES}/postgres", timeout=10)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(statement, *args, timeout=30)
        return rows
    finally:
        await conn.close()


@asynccontextmanager
async def scratch_database(template: str | None = None) -> AsyncIterator[tuple[str, str]]:
    """A new database as (name, url), a copy of `template` if given; dropped when the block ends."""
    name = f"interlude_resilience_{secrets.token_hex(4)}"
    await admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield name, f"{POSTGRES}/{name}"
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def terminate_backends(database: str) -> int:
    """Ends every session on `database` (PostgreSQL's own `pg_terminate_backend`), as a failover or an
    administrator would. Returns how many there were."""
    rows = await admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        database,
    )
    return len(rows)


@dataclass(frozen=True)
class Row:
    patient_id: str
    client_id: str
    id: str
    pain_now: int | None
    copies: int


async def stored_entries(url: str) -> list[Row]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT patient_id, client_id, id, pain_now, count(*) OVER (PARTITION BY patient_id, client_id) AS copies "
            "FROM diary_entry"
        )
    finally:
        await conn.close()
    return [Row(str(r["patient_id"]), str(r["client_id"]), str(r["id"]), r["pain_now"], r["copies"]) for r in rows]


async def orphans(url: str) -> dict[str, int]:
    """Half-written writes: an entry and the alert it raised are stored together or not at all."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        triggers = "SELECT (t ->> 'id')::uuid AS id FROM alert, jsonb_array_elements(alert.triggers::jsonb) AS t"
        dangling = await conn.fetchval(
            f"SELECT count(*) FROM ({triggers}) t WHERE t.id NOT IN (SELECT id FROM diary_entry)"
        )
        unalerted = await conn.fetchval(
            f"SELECT count(*) FROM diary_entry WHERE side_effects::text LIKE '%CHEST_PAIN%' AND id NOT IN ({triggers})"
        )
    finally:
        await conn.close()
    return {"alert triggers without their entry": dangling, "red-flag entries without their alert": unalerted}


# ---- processes


def environment(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("INTERLUDE_")}
    env.update(
        INTERLUDE_DATABASE_URL=database_url,
        INTERLUDE_SECRET_KEY=SECRET_KEY,
        INTERLUDE_JOBS_IN_PROCESS="false",
        # Cheap hashing: the code path is the production one, only faster.
        INTERLUDE_ARGON2_TIME_COST="1",
        INTERLUDE_ARGON2_MEMORY_KIB="8",
        INTERLUDE_READINESS_TIMEOUT_SECONDS=str(READINESS_TIMEOUT),
        # Its own package, not the working directory's: the tests' imports resolve whatever the cwd.
        PYTHONPATH=str(repo_root()),
    )
    return env


async def run(database_url: str, *args: str, cwd: Path) -> str:
    """A command to completion (120 s at most); its stdout. Fails the test on a non-zero exit."""
    process = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=environment(database_url),
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode()
    return out.decode()


@dataclass(frozen=True)
class Seeded:
    email: str
    patient_id: str


async def migrate_and_seed(database_url: str, phones: int, cwd: Path) -> list[Seeded]:
    await run(database_url, str(INTERLUDE), "migrate", cwd=cwd)
    out = await run(database_url, sys.executable, "-m", "tests.resilience.seed", str(phones), cwd=cwd)
    return [Seeded(**p) for p in json.loads(out)]


async def until(condition: Callable[[], Awaitable[bool]], *, within: float, what: str, every: float = 0.05) -> None:
    """Polls `condition` until it holds; fails after `within` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(every)


class Server:
    """`interlude serve` as operators run it. Its first start takes a free port from the system; restarts
    reuse that port, so clients find it again."""

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        self.starts += 1
        log = self.workdir / f"server-{self.starts}.log"
        with log.open("wb") as out:  # the child writes to its own copy of the descriptor
            # The console script is the Python process that runs uvicorn: its pid is the server's, no shell between.
            self.process = await asyncio.create_subprocess_exec(
                str(INTERLUDE),
                "serve",
                "--host",
                HOST,
                "--port",
                str(self.port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=out,
                cwd=self.workdir,
                env=environment(self.database_url),
            )
        await until(lambda: self._announced(log), within=30, what="server start")
        await until(self.ready, within=30, what="server ready")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def _announced(self, log: Path) -> bool:
        text = await asyncio.to_thread(log.read_text)
        assert self.alive, f"the server exited: {text[-2000:]}"
        match = re.search(rf"running on http://{re.escape(HOST)}:(\d+)", text)
        if match:
            self.port = int(match.group(1))
        return match is not None

    async def ready(self) -> bool:
        return await self.readiness() == 200

    async def readiness(self) -> int:
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=READINESS_TIMEOUT + 5) as client:
                return (await client.get("/readyz")).status_code
        except httpx.TransportError:
            return 0

    async def kill(self) -> int:
        """SIGKILL: no shutdown, no rollback sent, connections dropped mid-request. Returns the exit status."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        return await asyncio.wait_for(self.process.wait(), timeout=30)

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout=30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    def logs(self) -> list[dict[str, Any]]:
        lines = []
        for log in sorted(self.workdir.glob("server-*.log")):
            lines += [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        return lines


@asynccontextmanager
async def serving(database_url: str, workdir: Path) -> AsyncIterator[Server]:
    server = Server(database_url, workdir)
    try:
        await server.start()
        yield server
    finally:
        await server.stop()


def events(server: Server, name: str) -> list[dict[str, Any]]:
    return [r for r in server.logs() if r.get("event") == name]


def failures(server: Server) -> list[str]:
    """What the server logged as a failure of its own: internal errors (a database failure is never one)."""
    unexpected = [str(r.get("exception", ""))[-300:] for r in events(server, "graphql.unexpected_error")]
    # A phone hanging up halfway through sending its request is logged as `http.client_disconnected`, not here.
    unhandled = [str(r.get("exception", ""))[-300:] for r in events(server, "http.unhandled_error")]
    return unexpected + unhandled


# ---- the proxy


class Proxy:
    """A loopback TCP proxy in front of PostgreSQL. `cut()` drops every piped connection and refuses new ones, as a
    network partition or a database host going away would; `restore()` listens again on the same port."""

    def __init__(self, upstream: str = POSTGRES) -> None:
        parts = urlsplit(upstream)
        self.upstream = upstream
        self.upstream_address = (parts.hostname or HOST, parts.port or 5432)
        self.port = 0
        self._listener: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._transports: set[asyncio.WriteTransport] = set()

    def url(self, database: str) -> str:
        """The URL of `database` through the proxy."""
        parts = urlsplit(self.upstream)
        credentials, at, _ = parts.netloc.rpartition("@")
        return urlunsplit(parts._replace(netloc=f"{credentials}{at}{HOST}:{self.port}", path=f"/{database}"))

    async def start(self) -> None:
        self._listener = await asyncio.start_server(self._accept, HOST, self.port)
        self.port = self._listener.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._listener is not None
        self._listener.close()
        self._listener = None
        for transport in list(self._transports):
            transport.abort()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    restore = start

    async def close(self) -> None:
        if self._listener is not None:
            await self.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream_address)
        except OSError:
            writer.transport.abort()
            self._pipes.discard(task)
            return
        ends = (writer.transport, up_writer.transport)
        if self._listener is None:  # cut while this connection was being made
            for transport in ends:
                transport.abort()
            self._pipes.discard(task)
            return
        self._transports.update(ends)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)
        finally:
            for transport in ends:
                transport.abort()
                self._transports.discard(transport)
            self._pipes.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.transport.abort()


# ---- phones


def diary(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """What one phone records: an entry every six hours or so, from the day after the patient joined."""
    entries = []
    for i in range(count):
        recorded = JOINED + timedelta(days=1, hours=6 * i, minutes=rng.randrange(300))
        pain = rng.randint(0, 9)
        entry: dict[str, Any] = {
            "clientId": str(UUID(int=rng.getrandbits(128), version=4)),
            "recordedAt": recorded.astimezone(EASTERN).isoformat(),
            "painNow": pain,
            "painWorst": min(10, pain + rng.randint(0, 3)),
            "sleepHours": rng.choice([None, 5.5, 6.25, 7, 7.5, 8.75]),
            "mood": rng.randint(0, 10),
        }
        if rng.random() < 0.3:
            chosen = rng.sample(SIDE_EFFECTS, rng.randint(1, 2))
            entry["sideEffects"] = [{"code": code, "severity": rng.randint(0, 3)} for code in chosen]
        if rng.random() < 0.04:
            entry["sideEffects"] = [*entry.get("sideEffects", []), RED_FLAG]
        if rng.random() < 0.1:
            entry["note"] = "Slept badly; better after a walk."
        entries.append(entry)
    return entries


class Abort(Enum):
    RESET = "reset"  # the whole request written, then a TCP reset before the answer
    HALF = "half"  # part of the request written, then the socket closed
    TIMEOUT = "timeout"  # the client's own timeout fires mid-request and it closes the connection


@dataclass(frozen=True)
class Faults:
    duplicate: float = 0.15  # an answered request is sent again (the phone missed the answer)
    race: float = 0.08  # the same request goes out twice at once (a retry racing the original)
    abort: float = 0.1  # a request is sent and the phone hangs up before reading the answer
    # The database may be out of reach: UNAVAILABLE answers are expected, and retried. Without it, any error in an
    # answer fails the test.
    outage: bool = False


@dataclass
class Stats:
    requests: int = 0
    duplicated: int = 0
    raced: int = 0
    aborted: int = 0
    unavailable: int = 0
    refused: int = 0
    slowest: float = 0.0


@dataclass(frozen=True)
class Sent:
    kind: str  # "log" or "sync"
    entries: tuple[dict[str, Any], ...]

    def body(self) -> dict[str, Any]:
        if self.kind == "log":
            return {"query": LOG, "variables": {"input": self.entries[0]}}
        return {"query": SYNC, "variables": {"entries": list(self.entries)}}


@dataclass
class Phone:
    """A patient's phone with an offline queue. An entry is acknowledged only when a successful answer names it;
    until then the phone sends it again, however often that takes."""

    seeded: Seeded
    base_url: str
    rng: random.Random
    faults: Faults
    entries: list[dict[str, Any]]
    give_up_at: float
    acked: dict[str, str] = field(default_factory=dict)  # clientId → the entry id the server answered with
    violations: list[str] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)
    token: str = ""
    failed_in_a_row: int = 0

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=2)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=REQUEST_TIMEOUT, limits=limits) as client:
            while not self.token:
                await self._sign_in(client)
            while pending := [e for e in self.entries if e["clientId"] not in self.acked]:
                if time.monotonic() > self.give_up_at:
                    self.violations.append(f"{len(pending)} entries never acknowledged")
                    return
                await self._step(client, self._next(pending))

    def _next(self, pending: list[dict[str, Any]]) -> Sent:
        if self.rng.random() < 0.3:
            return Sent("log", (pending[0],))
        batch = pending[: self.rng.randint(2, 8)]
        if self.acked and self.rng.random() < 0.2:
            # An entry already delivered rides along again: the phone's queue is not always in sync with the server.
            done = [e for e in self.entries if e["clientId"] in self.acked]
            batch.insert(self.rng.randrange(len(batch) + 1), self.rng.choice(done))
        return Sent("sync", tuple(batch))

    async def _step(self, client: httpx.AsyncClient, sent: Sent) -> None:
        if self.rng.random() < self.faults.abort:
            await self._abort(client, sent, self.rng.choice(list(Abort)))
        if self.rng.random() < self.faults.race:
            self.stats.raced += 1
            answered = list(await asyncio.gather(self._send(client, sent), self._send(client, sent)))
        else:
            answered = [await self._send(client, sent)]
        if any(answered) and self.rng.random() < self.faults.duplicate:
            self.stats.duplicated += 1
            await self._send(client, sent)

    async def _sign_in(self, client: httpx.AsyncClient) -> None:
        variables = {"email": self.seeded.email, "password": PASSWORD}
        data = await self._post(client, {"query": LOGIN, "variables": variables})
        if data is not None:
            self.token = data["login"]["accessToken"]
        elif time.monotonic() > self.give_up_at:
            raise AssertionError(f"{self.seeded.email} could not sign in: {self.violations}")

    async def _send(self, client: httpx.AsyncClient, sent: Sent) -> bool:
        data = await self._post(client, sent.body())
        if data is None:
            return False
        if sent.kind == "log":
            answers = [("CREATED", data["logDiaryEntry"])]
        else:
            results = data["syncDiaryEntries"]
            if [r["clientId"] for r in results] != [e["clientId"] for e in sent.entries]:
                self.violations.append("a sync answer does not name the entries sent, in order")
                return False
            answers = [(r["status"], r["entry"]) for r in results]
        for entry, (status, answered) in zip(sent.entries, answers, strict=True):
            self._acknowledge(entry, status, answered)
        return True

    def _acknowledge(self, entry: dict[str, Any], status: str, answered: dict[str, Any] | None) -> None:
        client_id = entry["clientId"]
        if status not in ACKNOWLEDGED or answered is None or answered["clientId"] != client_id:
            self.violations.append(f"{client_id}: answered {status} with {answered}")
            return
        if answered["painNow"] != entry["painNow"]:
            self.violations.append(f"{client_id}: stored with other content")
        known = self.acked.setdefault(client_id, answered["id"])
        if known != answered["id"]:
            self.violations.append(f"{client_id}: acknowledged as two entries, {known} and {answered['id']}")

    async def _post(self, client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any] | None:
        """The `data` of a successful answer; None (after a short pause) when the phone must try again."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.stats.requests += 1
        started = time.monotonic()
        try:
            response = await client.post("/graphql", json=body, headers=headers)
        except httpx.TimeoutException:
            self.violations.append(f"no answer within {REQUEST_TIMEOUT} s")
            return None
        except httpx.TransportError:
            # Refused or dropped (the server was killed or is restarting), or a kept-alive connection the server
            # closed as it was reused: the phone cannot know whether its request was handled, so it sends it again.
            self.stats.refused += 1
            await self._pause()
            return None
        finally:
            self.stats.slowest = max(self.stats.slowest, time.monotonic() - started)
        return await self._data(response)

    async def _data(self, response: httpx.Response) -> dict[str, Any] | None:
        if response.status_code != 200:
            self.violations.append(f"HTTP {response.status_code}: {response.text[:200]}")
            await self._pause()
            return None
        payload = response.json()
        errors = payload.get("errors") or []
        for error in errors:
            extensions = error.get("extensions", {})
            if extensions.get("code") == "UNAVAILABLE" and extensions.get("retryable") is True:
                self.stats.unavailable += 1
                if self.faults.outage:
                    continue
            self.violations.append(f"error {extensions}")
        if errors:
            await self._pause()
            return None
        self.failed_in_a_row = 0
        data: dict[str, Any] = payload["data"]
        return data

    async def _pause(self) -> None:
        # A phone's back-off before it tries again: doubling from 50 ms up to 1 s while the failures last, jittered so
        # the fleet does not come back in lockstep.
        self.failed_in_a_row += 1
        ceiling = min(1.0, 0.05 * 2 ** min(self.failed_in_a_row, 5))
        await asyncio.sleep(ceiling * (0.5 + self.rng.random() / 2))

    async def _abort(self, client: httpx.AsyncClient, sent: Sent, how: Abort) -> None:
        self.stats.aborted += 1
        if how is Abort.TIMEOUT:
            with suppress(httpx.TransportError):
                headers = {"Authorization": f"Bearer {self.token}"}
                timeout = httpx.Timeout(0.001 + self.rng.random() * 0.03)
                response = await client.post("/graphql", json=sent.body(), headers=headers, timeout=timeout)
                # Answered before the timeout: the phone still ignores it, as if the answer were lost.
                await response.aclose()
            return
        request = _raw_request(self.base_url, json.dumps(sent.body()).encode(), self.token)
        cut = len(request) if how is Abort.RESET else self.rng.randrange(1, len(request))
        try:
            _, writer = await asyncio.open_connection(HOST, int(self.base_url.rsplit(":", 1)[1]))
        except OSError:
            return
        try:
            writer.write(request[:cut])
            await writer.drain()
            if how is Abort.RESET:
                # Linger 0: close() sends a reset instead of a graceful FIN.
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        finally:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()


def _raw_request(base_url: str, body: bytes, token: str) -> bytes:
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {base_url.removeprefix('http://')}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def reproducible(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 -- a simulation that replays from its seed, not a secret


def fleet(
    seeded: list[Seeded], base_url: str, faults: Faults, *, entries: int, seed: int, within: float
) -> list[Phone]:
    """One phone per seeded patient, each with its own generator: a run replays from `seed` (timing aside)."""
    give_up_at = time.monotonic() + within
    phones = []
    for i, who in enumerate(seeded):
        rng = reproducible(seed * 1000 + i)
        phones.append(Phone(who, base_url, rng, faults, diary(rng, entries), give_up_at))
    return phones


@asynccontextmanager
async def driving(phones: list[Phone]) -> AsyncIterator[asyncio.Future[list[None]]]:
    """The fleet at work; `await` the future for all phones to finish. A test that fails meanwhile stops them, so
    none keeps retrying in the background of the tests that follow."""
    load = asyncio.gather(*(p.run() for p in phones))
    try:
        yield load
    finally:
        if not load.done():
            load.cancel()
        with suppress(asyncio.CancelledError):
            await load


def acknowledged(phones: list[Phone]) -> int:
    return sum(len(p.acked) for p in phones)


def total(phones: list[Phone], stat: str) -> int:
    return sum(int(getattr(p.stats, stat)) for p in phones)


async def progress(phones: list[Phone], share: float) -> bool:
    """Whether `share` of all the fleet's entries are acknowledged (a condition for `until`)."""
    return acknowledged(phones) >= share * sum(len(p.entries) for p in phones)


# ---- the invariant


async def check_exactly_once(url: str, phones: list[Phone], *, complete: bool = True) -> list[str]:
    """What is wrong with the stored diary, given what each phone was told: an empty list when every acknowledged
    entry is stored once, as acknowledged and with the content sent, and nothing else is stored (an entry never
    acknowledged may be stored, once). `complete`: every entry must have been acknowledged by now."""
    rows = await stored_entries(url)
    problems = [f"{r.client_id} stored {r.copies} times" for r in rows if r.copies != 1]
    by_key = {(r.patient_id, r.client_id): r for r in rows}
    sent = {(p.seeded.patient_id, e["clientId"]): e for p in phones for e in p.entries}
    problems += [f"{key[1]} stored but never sent by that patient" for key in by_key.keys() - sent.keys()]
    for phone in phones:
        problems += phone.violations
        for client_id, entry_id in phone.acked.items():
            row = by_key.get((phone.seeded.patient_id, client_id))
            if row is None or row.id != entry_id:
                problems.append(f"{client_id} acknowledged as {entry_id} but stored as {row and row.id}")
        if complete and len(phone.acked) != len(phone.entries):
            problems.append(f"{phone.seeded.email}: {len(phone.entries) - len(phone.acked)} entries not acknowledged")
    problems += [
        f"{key[1]}: pain {row.pain_now} stored, {sent[key]['painNow']} sent"
        for key, row in by_key.items()
        if key in sent and row.pain_now != sent[key]["painNow"]
    ]
    problems += [f"{n} {what}" for what, n in (await orphans(url)).items() if n]
    return problems


# ---- single requests


async def sign_in(base_url: str, email: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT) as client:
        variables = {"email": email, "password": PASSWORD}
        response = await client.post("/graphql", json={"query": LOGIN, "variables": variables})
    assert response.status_code == 200, response.text
    token: str = response.json()["data"]["login"]["accessToken"]
    return token


@dataclass(frozen=True)
class Answer:
    body: dict[str, Any]
    seconds: float

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [e.get("extensions", {}) for e in self.body.get("errors") or []]


async def log_entry(base_url: str, token: str, entry: dict[str, Any]) -> Answer:
    """One logDiaryEntry, timed."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT) as client:
        response = await client.post(
            "/graphql", json=Sent("log", (entry,)).body(), headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200, response.text
    return Answer(response.json(), time.monotonic() - started)
