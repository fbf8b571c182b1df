"""What every HTTP provider answers when the network, not the provider, fails: RETRY, never an exception."""

from __future__ import annotations

import uuid

import pytest

from api.domain.push.providers.base import Outcome, PushMessage
from api.domain.push.providers.expo import ExpoProvider, ReceiptCheckFailed
from tests.push.fakes.server import Tls
from tests.push.support import NOW, PROVIDERS, Keys, running

MESSAGE = PushMessage(prompt_id=uuid.uuid4())


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_stopped_server_is_a_network_retry(name: str, keys: Keys) -> None:
    # APNs over cleartext HTTP/2 here: a TLS server that stops while our pool holds its connection waits 30 s for a
    # close_notify the idle client never reads. The classification under test does not depend on TLS.
    async with running(name, keys, None) as setup:
        # A first send leaves a pooled keep-alive connection behind, as in production.
        assert (await setup.provider.send(setup.token, MESSAGE, now=NOW)).outcome == Outcome.ACCEPTED
        await setup.server.stop()

        result = await setup.provider.send(setup.token, MESSAGE, now=NOW)
        again = await setup.provider.send(setup.token, MESSAGE, now=NOW)

    assert (result.outcome, result.error_class) == (Outcome.RETRY, "network")
    assert (again.outcome, again.error_class) == (Outcome.RETRY, "network")


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_server_that_does_not_answer_is_a_timeout_retry(name: str, keys: Keys, tls: Tls) -> None:
    async with running(name, keys, tls, http_timeout=0.2) as setup:
        setup.fake.hang = True

        result = await setup.provider.send(setup.token, MESSAGE, now=NOW)

    assert (result.outcome, result.error_class) == (Outcome.RETRY, "timeout")
    assert len(setup.fake.received) == 1  # it did reach the server


async def test_a_receipt_check_against_a_stopped_server_raises_a_network_retry(keys: Keys) -> None:
    async with running("expo", keys, None) as setup:
        assert isinstance(setup.provider, ExpoProvider)
        await setup.server.stop()

        with pytest.raises(ReceiptCheckFailed) as failed:
            await setup.provider.check_receipts(["ticket"], now=NOW)

    assert (failed.value.result.outcome, failed.value.result.error_class) == (Outcome.RETRY, "network")
