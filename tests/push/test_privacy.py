"""Design §4.4: what leaves the building is generic text and the prompt id. This sends one message through every
provider and reads everything each fake received: path, every header, decoded JWTs, decrypted or parsed bodies."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import jwt
import pytest

from api.domain.push.providers.base import GENERIC_BODY, GENERIC_TITLE, Outcome, PushMessage
from api.domain.push.providers.log import LogProvider
from tests.push.fakes.server import Received, Tls
from tests.push.privacy import CLINIC_NAME, leaks, readable
from tests.push.support import NOW, PROVIDERS, Keys, Running, running

PROMPT_ID = uuid.UUID("0f1e2d3c-4b5a-4697-8877-665544332211")
# Headers each provider may send. Anything new (an "x-clinic", a collapse id naming the instrument…) fails here first;
# the collapse ids and the Web Push topic are checked to be the prompt id (tests/push/test_collapse.py).
TRANSPORT_HEADERS = {"host", "accept", "accept-encoding", "connection", "user-agent", "content-length", "content-type"}
APNS_HEADERS = {"apns-topic", "apns-push-type", "apns-priority", "apns-expiration", "apns-collapse-id"}
ALLOWED_HEADERS = {
    "fcm": TRANSPORT_HEADERS | {"authorization"},
    "apns": TRANSPORT_HEADERS | {"authorization"} | APNS_HEADERS,
    "webpush": TRANSPORT_HEADERS | {"authorization", "ttl", "urgency", "content-encoding", "topic"},
    "expo": TRANSPORT_HEADERS,
}


def data_and_text(name: str, request: Received) -> tuple[dict[str, Any], tuple[str, str], set[str]]:
    """(the data fields, (title, body), the payload's keys) of one provider's request."""
    body = request.json()
    if name == "fcm":
        message = body["message"]
        return message["data"], (message["notification"]["title"], message["notification"]["body"]), set(message)
    if name == "apns":
        alert = body["aps"]["alert"]
        return {k: v for k, v in body.items() if k != "aps"}, (alert["title"], alert["body"]), set(body)
    if name == "webpush":
        return body["data"], (body["title"], body["body"]), set(body)
    [message] = body
    return message["data"], (message["title"], message["body"]), set(message)


PAYLOAD_KEYS = {
    "fcm": {"token", "notification", "data", "android", "apns"},
    "apns": {"aps", "prompt_id"},
    "webpush": {"title", "body", "data"},
    "expo": {"to", "title", "body", "data", "priority", "ttl"},
}


async def send_one(name: str, keys: Keys, tls: Tls) -> tuple[Running, list[Received]]:
    async with running(name, keys, tls) as setup:
        result = await setup.provider.send(setup.token, PushMessage(prompt_id=PROMPT_ID), now=NOW)
        assert result.outcome == Outcome.ACCEPTED
    return setup, setup.fake.received


@pytest.mark.parametrize("name", PROVIDERS)
async def test_only_generic_text_and_the_prompt_id_reach_the_provider(name: str, keys: Keys, tls: Tls) -> None:
    setup, received = await send_one(name, keys, tls)
    opaque = [setup.token, *setup.fake.opaque_values()]

    for request in received:
        text = readable(request, opaque)
        assert leaks(text, allowed_ids=[str(PROMPT_ID)]) == [], text
        assert {k for k, _ in request.headers} <= ALLOWED_HEADERS[name]
    push = received[-1]  # FCM's first request is the token exchange
    data, (title, body), payload_keys = data_and_text(name, push)
    assert data == {"prompt_id": str(PROMPT_ID)}
    assert (title, body) == (GENERIC_TITLE, GENERIC_BODY) == ("Interlude", "You have a new check-in")
    assert payload_keys == PAYLOAD_KEYS[name]


async def test_no_token_reaches_our_logs(keys: Keys, tls: Tls, caplog: pytest.LogCaptureFixture) -> None:
    secrets: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="api"):
        for name in PROVIDERS:
            setup, received = await send_one(name, keys, tls)
            secrets += [setup.token, *setup.fake.opaque_values()]
            secrets += [v.split(" ", 1)[1] for r in received if (v := r.header("authorization"))]
        await LogProvider().send("log-device-token-0123456789", PushMessage(prompt_id=PROMPT_ID), now=NOW)
    secrets.append("log-device-token-0123456789")

    ours = [r for r in caplog.records if r.name.startswith("api.")]
    assert ours, "the providers log their token refreshes and the log provider its sends"
    logged = json.dumps([{**r.__dict__, "message": r.getMessage()} for r in ours], default=str)
    assert [s for s in secrets if s in logged] == []
    assert leaks(logged, allowed_ids=[str(PROMPT_ID)]) == []


async def test_the_log_provider_keeps_no_raw_token() -> None:
    provider = LogProvider()
    token = "ExponentPushToken[raw-token-that-must-not-be-kept]"

    await provider.send(token, PushMessage(prompt_id=PROMPT_ID), now=NOW)

    kept = repr(list(provider.records))
    assert token not in kept
    assert "raw-token" not in kept
    assert leaks(kept, allowed_ids=[str(PROMPT_ID)]) == []


def request(*headers: tuple[str, str], body: bytes = b"", plaintext: bytes | None = None) -> Received:
    return Received("POST", "/send", "2", tuple(headers), body, plaintext)


def test_the_scan_finds_what_it_looks_for() -> None:
    """The scan above is only worth something if it can fail: planted words and ids are found wherever they hide."""
    claims_jwt = jwt.encode({"sub": f"mailto:ops@{CLINIC_NAME.replace(' ', '-')}.example"}, "k" * 32)

    assert leaks(readable(request(("x-note", "Ketamine infusion 2")), []), allowed_ids=[]) == ["ketamine", "infusion"]
    assert "sunrise" in leaks(readable(request(("authorization", f"vapid t={claims_jwt}, k=x")), []), allowed_ids=[])
    hidden = request(body=b"\x8a\x01 ciphertext", plaintext=json.dumps({"data": {"phq9": "23"}}).encode())
    assert leaks(readable(hidden, []), allowed_ids=[]) == ["phq9"]
    form = request(("content-type", "application/x-www-form-urlencoded"), body=b"note=PHQ+score+high")
    assert leaks(readable(form, []), allowed_ids=[]) == ["phq", "score"]
    other = uuid.uuid4()
    assert leaks(f"{PROMPT_ID} {other}", allowed_ids=[str(PROMPT_ID)]) == [f"foreign id {other}"]
    assert leaks(readable(request(("x-device", "pain-token")), ["pain-token"]), allowed_ids=[]) == []
    assert leaks(readable(request(("x-ok", "Interlude")), []), allowed_ids=[]) == []
