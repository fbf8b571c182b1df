"""Web Push subscriptions are checked when registered, so a broken one is refused at once, naming the token."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.domain.errors import BadInput
from api.domain.push import devices
from api.domain.push.models import Device, ProviderName
from tests.factories import Factory


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def subscription(endpoint: str = "https://fcm.googleapis.com/fcm/send/abc123", **keys: str) -> str:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return json.dumps(
        {"endpoint": endpoint, "keys": {"p256dh": b64(point), "auth": b64(secrets.token_bytes(16)), **keys}}
    )


async def test_a_browser_subscription_is_registered(factory: Factory, now: datetime) -> None:
    who = await factory.patient(await factory.clinic())
    device = await devices.register(who.actor, ProviderName.WEBPUSH, subscription(), "chrome", now=now)
    assert device.provider is ProviderName.WEBPUSH
    assert await Device.filter(patient_id=who.patient.id).count() == 1


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not json", "is not a Web Push subscription"),
        (json.dumps({"endpoint": "https://fcm.googleapis.com/fcm/send/x"}), "is not a Web Push subscription"),
        (subscription(p256dh=b64(b"\x04" + b"\x00" * 64)), "is not a Web Push subscription"),  # not on the curve
        (subscription(auth=b64(b"short")), "is not a Web Push subscription"),
        (subscription("not a url at all"), "is not a Web Push subscription"),
    ],
)
async def test_a_broken_subscription_is_refused_and_nothing_stored(
    factory: Factory, now: datetime, token: str, message: str
) -> None:
    who = await factory.patient(await factory.clinic())
    with pytest.raises(BadInput) as refused:
        await devices.register(who.actor, ProviderName.WEBPUSH, token, "chrome", now=now)
    assert refused.value.field == "token"
    assert message in refused.value.message
    assert await Device.filter(patient_id=who.patient.id).count() == 0


async def test_which_push_services_may_be_sent_to_is_left_to_the_provider(factory: Factory, now: datetime) -> None:
    """Registration accepts a well-formed subscription to any host; the configured provider's allowlist refuses
    unknown hosts at send time (so a deployment with other push services needs no code change)."""
    who = await factory.patient(await factory.clinic())
    device = await devices.register(
        who.actor, ProviderName.WEBPUSH, subscription("https://push.example/x"), None, now=now
    )
    assert device.disabled_at is None
