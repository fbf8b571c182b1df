"""The load generator: N keep-alive HTTP/1.1 connections, each sending its next request as soon as the previous
response is in. A process of its own, so that its CPU is not the server's.

    python -m bench.load < spec.json > result.json

The spec (JSON on stdin, as tokens must not show on a command line) names the server, the app, the cases and the
fixture (bench/cases.py), and either a duration (`warmup` then `seconds` measured) or a number of `requests` (the
soak: the cases taken in turn, all of them measured).

A response counts as a success only with status 200 and no `"errors"` in its body; failures are counted per case and
a few are kept as samples. Requests per second count successes only. Latency is from the first byte written to the
last byte read (perf_counter_ns), for the successes of the measured window. The server's CPU (utime + stime from
/proc/<pid>/stat) and this process's own are read at the window's edges.

Raw asyncio Protocols rather than an HTTP client: httpx costs more CPU per request than the floor does, and this
process shares the machine's two cores with the server and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

from bench.cases import Fixture, Request, Requests, requests_for

MEASURE, WARMUP, STOP = "measure", "warmup", "stop"
ERROR_SAMPLES = 3
SAMPLE_BYTES = 300
CLOSE_TIMEOUT = 30.0
CONTENT_LENGTH = b"\r\ncontent-length:"
CHUNKED = b"\r\ntransfer-encoding: chunked"


@dataclass
class Spec:
    host: str
    port: int
    app: str
    cases: list[str]
    fixture: Fixture
    server_pid: int
    connections: int = 32
    seed: int = 6
    warmup: float = 5.0
    seconds: float = 20.0
    # The soak: this many requests, no warm-up.
    requests: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Spec:
        return cls(**{**data, "fixture": Fixture.from_json(data["fixture"])})


@dataclass
class Tally:
    """Responses by case. Outside the measured window: the warm-up, and the responses in flight when it closed."""

    ok: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


class Run:
    """Shared by every connection: what to send next, and what came back."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        rng = random.Random(spec.seed)
        self.makers = [_maker(requests_for(c, spec.app, spec.fixture, rng), spec.host, rng) for c in spec.cases]
        self.turn = 0
        self.phase = MEASURE if spec.requests else WARMUP
        self.sent = 0
        self.latencies: list[int] = []
        self.measured = Tally()
        self.outside = Tally()
        self.samples: list[dict[str, Any]] = []

    def next_request(self) -> tuple[int, bytes] | None:
        if self.phase == STOP or (self.spec.requests and self.sent >= self.spec.requests):
            return None
        self.sent += 1
        case = self.turn
        self.turn = (case + 1) % len(self.makers)
        return case, self.makers[case]()

    def record(self, case: int, started: int, status: int, body: bytes) -> None:
        elapsed = time.perf_counter_ns() - started
        name = self.spec.cases[case]
        ok = status == 200 and b'"errors"' not in body
        tally = self.measured if self.phase == MEASURE else self.outside
        if ok:
            tally.ok[name] += 1
            if self.phase == MEASURE:
                self.latencies.append(elapsed)
        else:
            tally.errors[name] += 1
            if len(self.samples) < ERROR_SAMPLES:
                self.samples.append(
                    {"case": name, "status": status, "body": body[:SAMPLE_BYTES].decode(errors="replace")}
                )

    def lost(self, case: int, reason: str) -> None:
        """A request that got no response: the connection closed or could not be opened."""
        name = self.spec.cases[case] if case >= 0 else self.spec.cases[0]
        (self.measured if self.phase == MEASURE else self.outside).errors[name] += 1
        if len(self.samples) < ERROR_SAMPLES:
            self.samples.append({"case": name, "status": 0, "body": reason})


def _maker(requests: Requests, host: str, rng: random.Random) -> Callable[[], bytes]:
    if requests.make is not None:
        make = requests.make
        return lambda: frame(make(), host)
    prepared = [frame(r, host) for r in requests.variants]
    if len(prepared) == 1:
        only = prepared[0]
        return lambda: only
    return lambda: prepared[rng.randrange(len(prepared))]


def frame(request: Request, host: str) -> bytes:
    head = (
        f"POST {request.path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nAuthorization: Bearer {request.token}\r\n"
        f"Content-Length: {len(request.body)}\r\n\r\n"
    )
    return head.encode() + request.body


def parse_response(buffer: bytearray) -> tuple[int, bytes, int] | None:
    """(status, body, bytes used) of the complete response at the buffer's start, or None while it is partial."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = bytes(buffer[:head_end]).lower()
    status = int(head[9:12])
    start = head_end + 4
    at = head.find(CONTENT_LENGTH)
    if at >= 0:
        line_end = head.find(b"\r\n", at + 2)
        end = start + int(head[at + len(CONTENT_LENGTH) : line_end if line_end >= 0 else len(head)])
        return (status, bytes(buffer[start:end]), end) if len(buffer) >= end else None
    if CHUNKED in head:
        return _chunked(buffer, status, start)
    return status, b"", start


def _chunked(buffer: bytearray, status: int, at: int) -> tuple[int, bytes, int] | None:
    body = bytearray()
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
        start, end = line_end + 2, line_end + 2 + size
        if len(buffer) < end + 2:
            return None
        if size == 0:
            return status, bytes(body), end + 2
        body += buffer[start:end]
        at = end + 2


class Connection(asyncio.Protocol):
    def __init__(self, run: Run, closed: asyncio.Future[None]) -> None:
        self.run = run
        self.closed = closed
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.case = -1
        self.started = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        following = self.run.next_request()
        if following is None:
            self.case = -1
            self.transport.close()
            return
        self.case, data = following
        self.started = time.perf_counter_ns()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        parsed = parse_response(self.buffer)
        if parsed is None:
            return
        status, body, used = parsed
        del self.buffer[:used]
        self.run.record(self.case, self.started, status, body)
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.case >= 0:
            self.run.lost(self.case, f"connection closed during a request ({type(exc).__name__ if exc else 'EOF'})")
        if not self.closed.done():
            self.closed.set_result(None)


async def _slot(run: Run) -> None:
    """One connection, opened again if the server closes it while the run goes on."""
    loop = asyncio.get_running_loop()
    while run.phase != STOP and not (run.spec.requests and run.sent >= run.spec.requests):
        closed: asyncio.Future[None] = loop.create_future()
        try:
            await loop.create_connection(partial(Connection, run, closed), run.spec.host, run.spec.port)
        except OSError as exc:
            run.sent += 1
            run.lost(0, f"connect failed ({type(exc).__name__})")
            await asyncio.sleep(0.1)
            continue
        await closed


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_load(spec: Spec) -> dict[str, Any]:
    run = Run(spec)
    loop = asyncio.get_running_loop()
    window: dict[str, float] = {}

    def begin() -> None:
        run.phase = MEASURE
        window["start"] = time.perf_counter()
        window["server_cpu"] = cpu_seconds(spec.server_pid)
        window["own_cpu"] = time.process_time()

    def end() -> None:
        window["seconds"] = time.perf_counter() - window["start"]
        window["server_cpu"] = cpu_seconds(spec.server_pid) - window["server_cpu"]
        window["own_cpu"] = time.process_time() - window["own_cpu"]
        run.phase = STOP

    if spec.requests:
        begin()
    else:
        loop.call_later(spec.warmup, begin)
        loop.call_later(spec.warmup + spec.seconds, end)
    slots = [asyncio.create_task(_slot(run)) for _ in range(spec.connections)]
    # A server that stops answering must not hang the benchmark: the soak assumes at least 20 requests/s.
    deadline = spec.requests / 20 + CLOSE_TIMEOUT if spec.requests else spec.warmup + spec.seconds + CLOSE_TIMEOUT
    finished, unfinished = await asyncio.wait(slots, timeout=deadline)
    for task in unfinished:
        task.cancel()
    if spec.requests:
        end()
    for task in finished:
        task.result()
    return _result(run, window, hung=len(unfinished))


def _result(run: Run, window: dict[str, float], *, hung: int) -> dict[str, Any]:
    ok = sum(run.measured.ok.values())
    errors = sum(run.measured.errors.values())
    latencies = sorted(run.latencies)
    seconds = window.get("seconds", 0.0)
    return {
        "app": run.spec.app,
        "cases": run.spec.cases,
        "seconds": seconds,
        "ok": ok,
        "errors": errors,
        "ok_by_case": dict(run.measured.ok),
        "errors_by_case": dict(run.measured.errors),
        "rps": ok / seconds if seconds else 0.0,
        "p50_ms": _quantile(latencies, 0.50),
        "p99_ms": _quantile(latencies, 0.99),
        "server_cpu_s": window.get("server_cpu", 0.0),
        "loadgen_cpu_s": window.get("own_cpu", 0.0),
        "outside_ok": sum(run.outside.ok.values()),
        "outside_errors": sum(run.outside.errors.values()),
        "outside_errors_by_case": dict(run.outside.errors),
        "error_samples": run.samples,
        "hung_connections": hung,
    }


def _quantile(ordered: Sequence[int], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def _event_loop() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop  # noqa: PLC0415 -- optional: the load generator runs without it, only slower
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def main() -> int:
    spec = Spec.from_json(json.load(sys.stdin))
    with asyncio.Runner(loop_factory=_event_loop()) as runner:
        result = runner.run(run_load(spec))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
