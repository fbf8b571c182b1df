"""Keys generated per run, fake provider servers on 127.0.0.1, and providers pointed at them.

Each `*_setup` fixture starts a fake, builds its provider and, on teardown, closes both and fails the test if the
fake refused a request the test did not expect (`fake.problems`). A test that provokes a refusal on purpose checks
and clears `problems` itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.domain.push.providers import apns, expo, fcm, webpush
from tests.push.fakes.apns import FakeApns
from tests.push.fakes.expo import FakeExpo
from tests.push.fakes.fcm import FakeFcm
from tests.push.fakes.server import Tls, make_tls
from tests.push.fakes.webpush import FakeWebPush
from tests.push.support import (
    CLIENT_EMAIL,
    KEY_ID,
    PROJECT_ID,
    TEAM_ID,
    TIMEOUT,
    TOPIC,
    Keys,
    Setup,
    apns_config,
    fcm_config,
    finish,
    start,
    webpush_config,
)


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        service_account=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        apns=ec.generate_private_key(ec.SECP256R1()),
        vapid=ec.generate_private_key(ec.SECP256R1()),
    )


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("push-tls"))


@pytest_asyncio.fixture
async def fcm_setup(keys: Keys) -> AsyncIterator[Setup[FakeFcm, fcm.FcmProvider]]:
    fake = FakeFcm(project_id=PROJECT_ID, client_email=CLIENT_EMAIL, public_key=keys.service_account.public_key())
    server = await start(fake)
    setup = Setup(fake, server, fcm.FcmProvider(fcm_config(keys, fake)))
    yield setup
    await finish(setup)


@pytest_asyncio.fixture
async def apns_setup(keys: Keys, tls: Tls) -> AsyncIterator[Setup[FakeApns, apns.ApnsProvider]]:
    fake = FakeApns(team_id=TEAM_ID, key_id=KEY_ID, topic=TOPIC, public_key=keys.apns.public_key())
    server = await start(fake, tls)
    config = apns_config(keys, fake)
    # The provider's own client factory (HTTP/2 by ALPN), made to trust the fake's certificate.
    client = apns.new_client(config, verify=tls.client_context)
    setup = Setup(fake, server, apns.ApnsProvider(config, client=client), [client])
    yield setup
    await finish(setup)


@pytest_asyncio.fixture
async def webpush_setup(keys: Keys) -> AsyncIterator[Setup[FakeWebPush, webpush.WebPushProvider]]:
    fake = FakeWebPush()
    server = await start(fake)
    setup = Setup(fake, server, webpush.WebPushProvider(webpush_config(keys)))
    yield setup
    await finish(setup)


@pytest_asyncio.fixture
async def expo_setup() -> AsyncIterator[Setup[FakeExpo, expo.ExpoProvider]]:
    fake = FakeExpo()
    server = await start(fake)
    setup = Setup(fake, server, expo.ExpoProvider(expo.ExpoConfig(base_url=fake.url, timeout=TIMEOUT)))
    yield setup
    await finish(setup)
