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


@dataclass(frozen=True)
class AlertNotice:
    alert_id: UUID
    clinic_id: UUID
    kind: NoticeKind = NoticeKind.RAISED


class AlertBroker(Protocol):
    async def publish(self, notice: AlertNotice) -> None: ...

    def subscribe(self, clinic_id: UUID) -> AbstractAsyncContextManager[AsyncIterator[AlertNotice]]: ...


class LocalBroker:
    """One process: notices go straight to this process's subscribers of the clinic."""

    def __init__(self) -> None:
        self._queues: dict[UUID, set[asyncio.Queue[AlertNotice]]] = {}

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
        try:
            yield _drain(queue)
        finally:
            subscribers = self._queues[clinic_id]
            subscribers.discard(queue)
            if not subscribers:
                del self._queues[clinic_id]


async def _drain(queue: asyncio.Queue[AlertNotice]) -> AsyncIterator[AlertNotice]:
    while True:
        yield await queue.get()
