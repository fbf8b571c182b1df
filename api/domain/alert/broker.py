"""Fan-out of alert notices to subscribers: in process, or across replicas (PostgreSQL LISTEN/NOTIFY).

A notice carries ids only. A subscriber loads the alert through the domain, as the actor it serves, so the
channel never decides who may see what.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from uuid import UUID

log = logging.getLogger("interlude.alerts")

# A subscriber that stops reading loses notices beyond this many rather than growing without bound.
QUEUE_SIZE = 256


class NoticeKind(StrEnum):
    RAISED = "RAISED"
    ESCALATED = "ESCALATED"
    RETRIGGERED = "RETRIGGERED"


@dataclass(frozen=True)
class AlertNotice:
    alert_id: UUID
    clinic_id: UUID
    kind: NoticeKind = NoticeKind.RAISED


class AlertBroker(Protocol):
    async def publish(self, notice: AlertNotice) -> None:
        """Best effort, never raises, and returns at once: the alert is already stored, and a notice must neither
        fail nor hold up the write that raised it (the alert list and escalation do not depend on notices)."""

    def subscribe(self, clinic_id: UUID) -> AbstractAsyncContextManager[AsyncIterator[AlertNotice]]:
        """Notices of one clinic published from the moment the context is entered until it is left."""

    def subscribers(self, clinic_id: UUID) -> int:
        """How many subscriptions of this process listen to the clinic."""

    async def wait_subscribers(self, clinic_id: UUID, count: int) -> None:
        """Until exactly `count` subscriptions of this process listen to the clinic (for probes and tests)."""

    async def close(self) -> None: ...


class LocalBroker:
    """One process: notices go straight to this process's subscribers of the clinic."""

    def __init__(self) -> None:
        self._queues: dict[UUID, set[asyncio.Queue[AlertNotice]]] = {}
        # Replaced on every change of subscriptions; whoever waits for a count wakes and looks again.
        self._changed = asyncio.Event()

    async def publish(self, notice: AlertNotice) -> None:
        self.deliver(notice)

    def deliver(self, notice: AlertNotice) -> None:
        for queue in self._queues.get(notice.clinic_id, ()):
            try:
                queue.put_nowait(notice)
            except asyncio.QueueFull:
                log.warning("alert.subscriber_lagging", extra={"alert_id": str(notice.alert_id)})

    @asynccontextmanager
    async def subscribe(self, clinic_id: UUID) -> AsyncIterator[AsyncIterator[AlertNotice]]:
        queue: asyncio.Queue[AlertNotice] = asyncio.Queue(QUEUE_SIZE)
        self._queues.setdefault(clinic_id, set()).add(queue)
        self._touch()
        try:
            yield _drain(queue)
        finally:
            subscribers = self._queues[clinic_id]
            subscribers.discard(queue)
            if not subscribers:
                del self._queues[clinic_id]
            self._touch()

    def subscribers(self, clinic_id: UUID) -> int:
        return len(self._queues.get(clinic_id, ()))

    async def wait_subscribers(self, clinic_id: UUID, count: int) -> None:
        while self.subscribers(clinic_id) != count:
            await self._changed.wait()

    async def close(self) -> None:
        """Nothing to release: subscriptions end with their own connections."""

    def _touch(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


async def _drain(queue: asyncio.Queue[AlertNotice]) -> AsyncIterator[AlertNotice]:
    while True:
        yield await queue.get()
