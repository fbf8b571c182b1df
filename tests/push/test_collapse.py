"""A repeat shows once: a send repeated after a crash (tests/resilience/test_jobs_crash.py) or a reminder of the same
prompt carries the same collapse key, so the phone replaces the notification it shows instead of adding a second.
The key is the prompt id (hashed for Web Push, whose payload hides it) and nothing else; Expo has no such field, so
its repeats show twice."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import pytest

from api.domain.push.providers import webpush
from api.domain.push.providers.base import Outcome, PushMessage
from tests.push.fakes.fcm import message_problem
from tests.push.fakes.server import Received, Tls
from tests.push.support import NOW, PROVIDERS, Keys, running

FIRST = PushMessage(prompt_id=uuid.UUID("7a0c6b1e-0000-4000-8000-00000000000a"))
SECOND = PushMessage(prompt_id=uuid.UUID("7a0c6b1e-0000-4000-8000-00000000000b"))


def collapse_keys(name: str, request: Received) -> dict[str, str]:
    """Every field of one send request that tells the provider or the phone which notification to replace."""
    if name == "apns":
        return {"apns-collapse-id": request.header("apns-collapse-id") or ""}
    if name == "fcm":
        message = request.json()["message"]
        return {
            "android.notification.tag": message["android"]["notification"]["tag"],
            "apns.headers.apns-collapse-id": message["apns"]["headers"]["apns-collapse-id"],
        }
    if name == "webpush":
        return {"topic": request.header("topic") or ""}
    [message] = request.json()
    assert not {k for k in message if "collapse" in k.lower() or k.lower() in {"tag", "topic"}}
    return {}


def expected(name: str, message: PushMessage) -> dict[str, str]:
    prompt_id = str(message.prompt_id)
    return {
        "apns": {"apns-collapse-id": prompt_id},
        "fcm": {"android.notification.tag": prompt_id, "apns.headers.apns-collapse-id": prompt_id},
        "webpush": {"topic": webpush.topic(message)},
        "expo": {},
    }[name]


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_repeat_carries_the_same_collapse_key_and_another_prompt_another(
    name: str, keys: Keys, tls: Tls
) -> None:
    async with running(name, keys, tls) as setup:
        for message in (FIRST, FIRST, SECOND):
            result = await setup.provider.send(setup.token, message, now=NOW)
            assert result.outcome == Outcome.ACCEPTED
        sends = [r for r in setup.fake.received if r.path != "/token"]  # FCM's first request is the token exchange
        assert setup.fake.problems == []

    first, repeat, second = (collapse_keys(name, r) for r in sends)
    assert first == repeat == expected(name, FIRST)
    assert second == expected(name, SECOND)
    if name != "expo":
        assert first != second
    if name == "webpush":  # the encrypted body hides the prompt id; no header gives it away
        headers = " ".join(v for r in sends for _, v in r.headers)
        assert str(FIRST.prompt_id) not in headers
        assert FIRST.prompt_id.hex not in headers


@pytest.mark.parametrize(
    ("name", "header", "problem"), [("apns", "apns-collapse-id", "BadCollapseId"), ("webpush", "topic", "topic")]
)
async def test_the_fakes_refuse_a_send_without_its_collapse_key(
    name: str, header: str, problem: str, keys: Keys, tls: Tls
) -> None:
    """The fakes' checks can fail: a provider that stopped setting the key would be refused in every test."""
    async with running(name, keys, tls) as setup:
        # The provider's own client, or the one injected into it (APNs).
        client: httpx.AsyncClient = setup.clients[0] if setup.clients else setup.provider._client  # type: ignore[attr-defined]

        async def strip(request: httpx.Request) -> None:
            del request.headers[header]

        client.event_hooks["request"].append(strip)
        result = await setup.provider.send(setup.token, FIRST, now=NOW)

        assert (result.outcome, result.error_class) == (
            Outcome.FAILED,
            "apns.400.BadCollapseId" if name == "apns" else "http.400",
        )
        [refused] = setup.fake.problems
        assert problem in refused
        setup.fake.problems.clear()


def test_the_fcm_fake_refuses_a_message_without_its_collapse_keys() -> None:
    good: dict[str, Any] = {
        "message": {
            "token": "t",
            "notification": {"title": "Interlude", "body": "You have a new check-in"},
            "data": {"prompt_id": str(FIRST.prompt_id)},
            "android": {"priority": "high", "ttl": "3600s", "notification": {"tag": str(FIRST.prompt_id)}},
            "apns": {
                "headers": {
                    "apns-priority": "10",
                    "apns-expiration": "1",
                    "apns-collapse-id": str(FIRST.prompt_id),
                }
            },
        }
    }
    assert message_problem(good) is None
    untagged = copy.deepcopy(good)
    del untagged["message"]["android"]["notification"]
    assert message_problem(untagged) == "android.notification is not {tag}"
    too_long = copy.deepcopy(good)
    too_long["message"]["apns"]["headers"]["apns-collapse-id"] = "x" * 65
    assert message_problem(too_long) == "apns-collapse-id missing or over 64 bytes"
