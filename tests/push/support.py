"""What the push tests share: fixed names and clock, key and config builders, and every HTTP provider with its
fake, built the same way for tests that run across all of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from api.domain.push.providers import apns, expo, fcm, webpush
from api.domain.push.providers.base import PushProvider
from tests.push.fakes.apns import FakeApns
from tests.push.fakes.expo import FakeExpo
from tests.push.fakes.fcm import FakeFcm
from tests.push.fakes.server import FakeService, RunningServer, Tls
from tests.push.fakes.webpush import FakeWebPush

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TIMEOUT = 5.0  # generous: only a broken fake would take it, and then the test fails instead of hanging
PROJECT_ID = "interlude-test"
CLIENT_EMAIL = "push-sender@interlude-test.iam.gserviceaccount.com"
TEAM_ID = "TEAM123456"
KEY_ID = "KEY1234567"
TOPIC = "org.interlude.app"
VAPID_SUBJECT = "mailto:push-operations@interlude.example"
APNS_DEVICE = "a1" * 32
FCM_DEVICE = "fcm-registration-token:APA91bFakeDeviceToken"
EXPO_DEVICE = "ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]"

F = TypeVar("F", bound=FakeService)
P = TypeVar("P", bound=PushProvider)


def pem(key: PrivateKeyTypes) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass(frozen=True)
class Keys:
    service_account: rsa.RSAPrivateKey
    apns: ec.EllipticCurvePrivateKey
    vapid: ec.EllipticCurvePrivateKey


@dataclass
class Setup(Generic[F, P]):
    fake: F
    server: RunningServer
    provider: P
    clients: list[httpx.AsyncClient] = field(default_factory=list)  # injected into the provider; closed by us


async def start(fake: F, tls: Tls | None = None) -> RunningServer:
    server = RunningServer(fake, tls=tls)
    await server.start()
    return server


async def finish(setup: Setup[F, P]) -> None:
    await setup.provider.aclose()
    for client in setup.clients:
        await client.aclose()
    await setup.server.stop()
    assert setup.fake.problems == [], "the fake refused requests the test did not expect"


def service_account(keys: Keys, token_uri: str) -> fcm.ServiceAccount:
    return fcm.ServiceAccount(
        project_id=PROJECT_ID,
        client_email=CLIENT_EMAIL,
        private_key=pem(keys.service_account),
        token_uri=token_uri,
        private_key_id="fake-key-1",
    )


def fcm_config(keys: Keys, fake: FakeFcm, *, timeout: float = TIMEOUT) -> fcm.FcmConfig:
    return fcm.FcmConfig(service_account=service_account(keys, fake.token_uri), base_url=fake.url, timeout=timeout)


def apns_config(keys: Keys, fake: FakeApns, *, timeout: float = TIMEOUT) -> apns.ApnsConfig:
    return apns.ApnsConfig(
        team_id=TEAM_ID, key_id=KEY_ID, topic=TOPIC, private_key=pem(keys.apns), base_url=fake.url, timeout=timeout
    )


def webpush_config(keys: Keys, *, timeout: float = TIMEOUT) -> webpush.WebPushConfig:
    # The fake is plain HTTP on 127.0.0.1; production keeps require_https and the default push-service hosts.
    return webpush.WebPushConfig(
        vapid_subject=VAPID_SUBJECT,
        vapid_private_key=pem(keys.vapid),
        allowed_hosts=("127.0.0.1",),
        require_https=False,
        timeout=timeout,
    )


PROVIDERS = ["fcm", "apns", "webpush", "expo"]


@dataclass
class Running:
    fake: FakeService
    server: RunningServer
    provider: PushProvider
    token: str  # a device token the fake accepts
    clients: list[httpx.AsyncClient] = field(default_factory=list)


async def _build(name: str, keys: Keys, tls: Tls | None, http_timeout: float) -> Running:
    if name == "fcm":
        fcm_fake = FakeFcm(
            project_id=PROJECT_ID, client_email=CLIENT_EMAIL, public_key=keys.service_account.public_key()
        )
        server = await start(fcm_fake)
        return Running(fcm_fake, server, fcm.FcmProvider(fcm_config(keys, fcm_fake, timeout=http_timeout)), FCM_DEVICE)
    if name == "apns":
        apns_fake = FakeApns(team_id=TEAM_ID, key_id=KEY_ID, topic=TOPIC, public_key=keys.apns.public_key())
        server = await start(apns_fake, tls)
        config = apns_config(keys, apns_fake, timeout=http_timeout)
        if tls is None:  # HTTP/2 over cleartext TCP, by prior knowledge
            client = httpx.AsyncClient(http1=False, http2=True, timeout=http_timeout)
        else:
            client = apns.new_client(config, verify=tls.client_context)
        return Running(apns_fake, server, apns.ApnsProvider(config, client=client), APNS_DEVICE, [client])
    if name == "webpush":
        webpush_fake = FakeWebPush()
        server = await start(webpush_fake)
        provider = webpush.WebPushProvider(webpush_config(keys, timeout=http_timeout))
        token = webpush_fake.subscribe(provider.application_server_key).token()
        return Running(webpush_fake, server, provider, token)
    expo_fake = FakeExpo()
    server = await start(expo_fake)
    return Running(
        expo_fake, server, expo.ExpoProvider(expo.ExpoConfig(base_url=expo_fake.url, timeout=http_timeout)), EXPO_DEVICE
    )


@asynccontextmanager
async def running(
    name: str,
    keys: Keys,
    tls: Tls | None,
    *,
    http_timeout: float = TIMEOUT,
) -> AsyncIterator[Running]:
    """`tls` is for the APNs fake; without it, APNs is HTTP/2 over cleartext (h2c by prior knowledge)."""
    setup = await _build(name, keys, tls, http_timeout)
    try:
        yield setup
    finally:
        await setup.provider.aclose()
        for client in setup.clients:
            await client.aclose()
        await setup.server.stop()
