"""What the jobs crash tests share: a due outbox, an Expo fake that can hold one send, and `interlude jobs` run as a
real process against them.

The jobs process reads the wall clock, so the seeded rows are due since 2000 and answerable until 2100: the tests
behave the same whatever day they run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple
from uuid import UUID, uuid4

from starlette.requests import Request

from api.domain.patient.models import Patient
from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.push import devices
from api.domain.push.models import MessageStatus, ProviderName, PushMessage
from tests.conftest import Database, repo_root
from tests.factories import Factory
from tests.push.fakes.expo import FakeExpo
from tests.push.fakes.server import Received, RunningServer

DUE_SINCE = datetime(2000, 1, 1, tzinfo=UTC)
OPEN_UNTIL = datetime(2100, 1, 1, tzinfo=UTC)
SEND_PATH = "/--/api/v2/push/send"
# The dispatch sweeps every second with it, and starts sends for three seconds of each claim: several times what
# the first process takes to reach its held send (under a second on a busy machine).
LEASE_SECONDS = 4
DEADLINE = 30.0  # seconds for any one wait: a process that hangs fails the test instead of stalling CI

# What a provider request says about the message: the device it goes to and the prompt it is for. Every seeded
# message is a first send (sequence 0), so this pair is the message's identity.
Identity = tuple[str, UUID]


class Row(NamedTuple):
    status: MessageStatus
    attempts: int
    leased: bool


async def seed_outbox(factory: Factory, *, phones: int, prompts: int) -> list[Identity]:
    """`phones × prompts` due Expo messages for one patient whose plan is cleared (the jobs process plans nothing
    of its own). Devices are registered through the domain service; the sent prompts and their outbox rows are
    written directly: the funnel that makes them is tested elsewhere, here only the outbox matters."""
    patient = await factory.patient(await factory.clinic())
    await Patient.filter(id=patient.patient.id).update(plan_family_id=None)
    await Prompt.filter(patient_id=patient.patient.id).delete()
    tokens = [f"ExponentPushToken[crash-{i:04d}]" for i in range(phones)]
    registered = [
        await devices.register(patient.actor, ProviderName.EXPO, token, "ios", now=factory.now) for token in tokens
    ]
    sent = [
        Prompt(
            id=uuid4(),
            clinic_id=patient.patient.clinic_id,
            patient_id=patient.patient.id,
            plan_id=uuid4(),
            rule_id="crash",
            anchor=f"n:{i}",
            instrument="daily_diary",
            due_at=DUE_SINCE,
            deliver_at=DUE_SINCE,
            expires_at=OPEN_UNTIL,
            status=PromptStatus.SENT,
            sent_at=DUE_SINCE,
            created_at=DUE_SINCE,
            updated_at=DUE_SINCE,
        )
        for i in range(prompts)
    ]
    await Prompt.bulk_create(sent)
    messages = [
        PushMessage(
            clinic_id=patient.patient.clinic_id,
            prompt_id=p.id,
            device_id=d.id,
            next_attempt_at=DUE_SINCE,
            created_at=DUE_SINCE,
            updated_at=DUE_SINCE,
        )
        for p in sent
        for d in registered
    ]
    await PushMessage.bulk_create(messages, batch_size=1000)
    return [(d.token, p.id) for p in sent for d in registered]


async def outbox_rows() -> dict[Identity, Row]:
    rows = await PushMessage.all().values_list("device__token", "prompt_id", "status", "attempts", "lease_until")
    return {
        (token, prompt): Row(MessageStatus(status), attempts, lease is not None)
        for token, prompt, status, attempts, lease in rows
    }


def tally(rows: dict[Identity, Row]) -> Counter[Row]:
    return Counter(rows.values())


class HoldingExpo(FakeExpo):
    """Expo, recording each message it takes by identity; the `hold_at`-th send is taken (recorded) and then not
    answered until `let_go()`: the dispatcher is in the middle of that send."""

    def __init__(self, *, hold_at: int) -> None:
        super().__init__()
        self.hold_at = hold_at
        self.sends: list[Identity] = []
        self.holding = asyncio.Event()
        self._let_go = asyncio.Event()
        self._changed = asyncio.Condition()

    async def record(self, request: Request, plaintext: bytes | None = None) -> Received:
        received = await super().record(request, plaintext)
        if received.path != SEND_PATH:
            return received
        self.sends += [(m["to"], UUID(m["data"]["prompt_id"])) for m in received.json()]
        async with self._changed:
            self._changed.notify_all()
        if len(self.sends) == self.hold_at:
            self.holding.set()
            await self._let_go.wait()
        return received

    def let_go(self) -> None:
        self._let_go.set()

    def release(self) -> None:
        self.let_go()
        super().release()

    async def until_sends(self, count: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.sends) >= count)


@asynccontextmanager
async def serving(fake: HoldingExpo) -> AsyncIterator[HoldingExpo]:
    server = RunningServer(fake)
    await server.start()
    try:
        yield fake
    finally:
        await server.stop()


def jobs_environment(db: Database, fake: FakeExpo) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("INTERLUDE_")}
    env.update(
        INTERLUDE_DATABASE_URL=db.url,
        INTERLUDE_SECRET_KEY="test-secret-key-that-is-long-enough-0123456789",
        # Cheap hashing: the code path is the production one, only faster.
        INTERLUDE_ARGON2_TIME_COST="1",
        INTERLUDE_ARGON2_MEMORY_KIB="8",
        INTERLUDE_PUSH_EXPO_ENABLED="true",
        INTERLUDE_PUSH_EXPO_BASE_URL=fake.url,
        INTERLUDE_PUSH_LEASE_SECONDS=str(LEASE_SECONDS),
        INTERLUDE_LOG_LEVEL="INFO",
    )
    return env


@dataclass
class JobsProcess:
    """`interlude jobs` in its own python process (the one the signals reach), its log lines read as they come."""

    process: asyncio.subprocess.Process
    events: list[dict[str, object]] = field(default_factory=list)
    _logged: asyncio.Condition = field(default_factory=asyncio.Condition)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, env: dict[str, str]) -> JobsProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "api.cli",
            "jobs",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            cwd=repo_root(),
            env=env,
        )
        jobs = cls(process)
        # Read to the end: a full pipe would block the process on its next log line.
        jobs._reader = asyncio.create_task(jobs._read())
        return jobs

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "stderr", "text": line.decode(errors="replace")}
            async with self._logged:
                self.events.append(event)
                self._logged.notify_all()

    def logged(self, name: str) -> list[dict[str, object]]:
        return [e for e in self.events if e.get("event") == name]

    def problems(self) -> list[dict[str, object]]:
        """Errors it logged, and anything it wrote that is not a log line (a traceback)."""
        return [e for e in self.events if e.get("level") in {"error", "critical"} or e.get("event") == "stderr"]

    async def until(self, waited: Awaitable[object], what: str) -> None:
        """Wait for `waited`, failing at once if the process exits first, and after DEADLINE seconds."""
        task = asyncio.ensure_future(waited)
        exited = asyncio.ensure_future(self.process.wait())
        try:
            done, _ = await asyncio.wait({task, exited}, timeout=DEADLINE, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (task, exited):
                pending.cancel()
        if task not in done:
            reason = f"exited with {self.process.returncode}" if exited in done else f"not within {DEADLINE} s"
            raise AssertionError(f"waiting for {what}: the jobs process {reason}; last log lines: {self.events[-5:]}")
        task.result()

    async def until_logged(self, name: str) -> None:
        async def seen() -> None:
            async with self._logged:
                await self._logged.wait_for(lambda: bool(self.logged(name)))

        await self.until(seen(), f"log event {name}")

    async def kill(self) -> int:
        """SIGKILL: no handler runs, nothing is flushed or given back."""
        self.process.send_signal(signal.SIGKILL)
        return await self.exit()

    async def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return await self.exit()

    async def exit(self) -> int:
        async with asyncio.timeout(DEADLINE):
            code = await self.process.wait()
            if self._reader is not None:
                await self._reader
        return code

    async def close(self) -> None:
        """For `finally`: kills the process if a failed test left it running."""
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            await self._reader


def counts(event: dict[str, object]) -> dict[str, int]:
    """The counts a pass logged (`jobs.passes._logged`)."""
    found = event["counts"]
    assert isinstance(found, dict)
    return found
