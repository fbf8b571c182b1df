"""A provider that sends nothing: development and demos. It keeps what it would have sent, minus the token."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from api.domain.push.providers.base import PushMessage, SendResult, accepted, token_fingerprint

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogConfig:
    max_records: int = 1000  # a long-running development server must not grow without bound


@dataclass(frozen=True)
class LoggedPush:
    message_id: str
    token_sha256: str  # a short SHA-256 prefix: the raw token is a credential for the patient's phone
    prompt_id: UUID
    title: str
    body: str
    at: datetime


class LogProvider:
    name = "log"

    def __init__(self, config: LogConfig | None = None) -> None:
        self.config = config or LogConfig()
        self.records: deque[LoggedPush] = deque(maxlen=self.config.max_records)
        self._sent = 0

    async def send(self, token: str, message: PushMessage, *, now: datetime) -> SendResult:
        self._sent += 1
        record = LoggedPush(
            message_id=f"log-{self._sent}",
            token_sha256=token_fingerprint(token),
            prompt_id=message.prompt_id,
            title=message.title,
            body=message.body,
            at=now,
        )
        self.records.append(record)
        ids = {"prompt_id": str(message.prompt_id), "token_sha256": record.token_sha256}
        logger.info("push.log.sent", extra={**ids, "message_id": record.message_id})
        return accepted(record.message_id)

    async def aclose(self) -> None:
        return None
