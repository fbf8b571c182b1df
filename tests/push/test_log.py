"""The development provider: records what would be sent, never the token."""

from __future__ import annotations

import uuid

import pytest

from api.domain.push.providers.base import Outcome, PushMessage, token_fingerprint
from api.domain.push.providers.log import LogConfig, LogProvider
from tests.push.support import NOW

TOKEN = "fcm-registration-token:APA91bSecretDeviceToken"


async def test_sends_are_recorded_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    provider = LogProvider()
    message = PushMessage(prompt_id=uuid.uuid4())

    with caplog.at_level("DEBUG", logger="api.domain.push"):
        result = await provider.send(TOKEN, message, now=NOW)

    assert (result.outcome, result.provider_message_id) == (Outcome.ACCEPTED, "log-1")
    [record] = provider.records
    assert (record.prompt_id, record.title, record.body, record.at) == (
        message.prompt_id,
        "Interlude",
        "You have a new check-in",
        NOW,
    )
    assert record.token_sha256 == token_fingerprint(TOKEN)
    assert TOKEN not in repr(record)
    [log] = caplog.records
    assert log.getMessage() == "push.log.sent"
    assert log.__dict__["prompt_id"] == str(message.prompt_id)
    assert log.__dict__["token_sha256"] == token_fingerprint(TOKEN)
    assert all(TOKEN not in str(value) for value in log.__dict__.values())


async def test_the_record_is_bounded() -> None:
    provider = LogProvider(LogConfig(max_records=3))
    prompts = [uuid.uuid4() for _ in range(5)]

    for prompt_id in prompts:
        await provider.send(TOKEN, PushMessage(prompt_id=prompt_id), now=NOW)

    assert [r.prompt_id for r in provider.records] == prompts[2:]
    assert [r.message_id for r in provider.records] == ["log-3", "log-4", "log-5"]
