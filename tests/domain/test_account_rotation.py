"""Signing-key rotation: new tokens carry the current key's kid; tokens of a previous key are accepted until they
expire, but only those issued before the rotating restart and for at most one lifetime (the old key may have leaked:
its holder must not mint tokens that outlive that); any other kid is refused, whatever key signed it. Refresh tokens
do not depend on the key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import jwt
import pytest

from api.container import build_services
from api.domain.account.sealing import Sealer
from api.domain.account.service import AccountService
from api.domain.account.tokens import ALGORITHM, AccessTokens, key_id
from api.domain.actor import Role
from api.domain.errors import Unauthenticated
from api.domain.services import Services
from api.settings import Settings
from tests.factories import PASSWORD, Factory

OLD = "old-signing-secret-key-that-is-long-enough-0001"
CURRENT = "current-signing-secret-key-that-is-long-enough-02"
RETIRED = "retired-signing-secret-key-that-is-long-enough-03"
TTL = timedelta(minutes=15)
NOW = datetime(2031, 5, 17, 9, 30, tzinfo=UTC)
# The restart that rotated the key, a little after NOW.
RESTART = NOW + timedelta(minutes=2)

BEFORE = AccessTokens(secret_key=OLD, ttl=TTL)
AFTER = AccessTokens(secret_key=CURRENT, ttl=TTL, previous_keys=(OLD,), started_at=RESTART)


def _issue(tokens: AccessTokens, *, now: datetime = NOW) -> str:
    token, _ = tokens.issue(account_id=uuid4(), role=Role.CLINICIAN, clinic_id=uuid4(), patient_id=None, now=now)
    return token


def test_new_tokens_are_signed_with_the_current_key_only() -> None:
    token = _issue(AFTER)

    assert jwt.get_unverified_header(token)["kid"] == key_id(CURRENT) == AFTER.kid
    assert AFTER.verify(token, now=NOW).role is Role.CLINICIAN
    with pytest.raises(Unauthenticated, match="unknown signing key"):
        BEFORE.verify(token, now=NOW)


def test_a_token_of_the_previous_key_is_accepted_after_rotation_until_it_expires() -> None:
    token = _issue(BEFORE)

    assert AFTER.verify(token, now=NOW + TTL - timedelta(seconds=1)).role is Role.CLINICIAN
    with pytest.raises(Unauthenticated, match="expired"):
        AFTER.verify(token, now=NOW + TTL)


def test_a_token_of_the_previous_key_issued_after_the_restart_is_refused() -> None:
    """Whoever holds the old key can sign a fresh `iat`: such a token is no session of ours."""
    minted = _issue(BEFORE, now=RESTART + timedelta(seconds=1))
    at_restart = _issue(BEFORE, now=RESTART)

    with pytest.raises(Unauthenticated, match="invalid access token"):
        AFTER.verify(minted, now=RESTART + timedelta(minutes=1))
    assert AFTER.verify(at_restart, now=RESTART + timedelta(minutes=1)).role is Role.CLINICIAN
    # The current key's tokens know no such limit.
    assert AFTER.verify(_issue(AFTER, now=RESTART + TTL), now=RESTART + TTL).role is Role.CLINICIAN


@pytest.mark.parametrize(
    ("lifetime", "accepted"),
    [(TTL, True), (TTL + timedelta(seconds=1), False), (timedelta(days=365), False)],
    ids=["one-lifetime", "a-second-longer", "a-year"],
)
def test_a_token_of_the_previous_key_living_longer_than_one_lifetime_is_refused(
    lifetime: timedelta, accepted: bool
) -> None:
    """So every token of the old key is dead one lifetime after the restart, whatever its holder signs."""
    token = _issue(AccessTokens(secret_key=OLD, ttl=lifetime), now=NOW)
    check = NOW + timedelta(minutes=1)

    if accepted:
        assert AFTER.verify(token, now=check).role is Role.CLINICIAN
    else:
        with pytest.raises(Unauthenticated, match="invalid access token"):
            AFTER.verify(token, now=check)


def test_previous_keys_need_the_start_instant() -> None:
    with pytest.raises(ValueError, match="started_at"):
        AccessTokens(secret_key=CURRENT, ttl=TTL, previous_keys=(OLD,))


def test_the_container_dates_the_previous_key_s_tokens_by_the_build_instant(settings: Settings) -> None:
    rotated = settings.model_copy(update={"secret_key": CURRENT, "previous_secret_keys": [OLD]})
    tokens = build_services(rotated, now=RESTART).accounts.tokens
    old = AccessTokens(secret_key=OLD, ttl=tokens.ttl)

    assert tokens.started_at == RESTART
    assert tokens.verify(_issue(old, now=NOW), now=RESTART).role is Role.CLINICIAN
    with pytest.raises(Unauthenticated):
        tokens.verify(_issue(old, now=RESTART + timedelta(seconds=1)), now=RESTART + timedelta(seconds=2))


def test_a_token_of_a_key_no_longer_listed_is_refused() -> None:
    dropped = AccessTokens(secret_key=CURRENT, ttl=TTL, previous_keys=(RETIRED,), started_at=RESTART)

    with pytest.raises(Unauthenticated, match="unknown signing key"):
        dropped.verify(_issue(BEFORE), now=NOW)


@pytest.mark.parametrize(
    ("kid", "key"),
    [
        pytest.param(key_id(OLD), CURRENT, id="previous-kid-signed-with-current-key"),
        pytest.param(key_id(CURRENT), OLD, id="current-kid-signed-with-previous-key"),
        pytest.param(key_id(OLD), "attacker-secret-" + "x" * 32, id="previous-kid-signed-by-an-attacker"),
    ],
)
def test_a_kid_that_does_not_name_the_signing_key_is_refused(kid: str, key: str) -> None:
    claims = jwt.decode(_issue(AFTER), options={"verify_signature": False})
    forged = jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})

    with pytest.raises(Unauthenticated, match="invalid access token"):
        AFTER.verify(forged, now=NOW)


def _signed(header: dict[str, object], claims: dict[str, object], key: str) -> str:
    """A JWT assembled by hand: PyJWT will not encode some of the headers a forger can send."""
    segments = [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode())]
    signature = hmac.new(key.encode(), ".".join(segments).encode(), hashlib.sha256).digest()
    return ".".join([*segments, _b64(signature)])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "kid", [None, "", 12, ["a"], "../etc/passwd"], ids=["missing", "empty", "number", "list", "path"]
)
def test_a_missing_or_odd_kid_is_refused(kid: object) -> None:
    claims = jwt.decode(_issue(AFTER), options={"verify_signature": False})
    header: dict[str, object] = {"alg": ALGORITHM, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid

    with pytest.raises(Unauthenticated):
        AFTER.verify(_signed(header, claims, CURRENT), now=NOW)


def test_a_hand_assembled_token_with_the_right_kid_is_accepted() -> None:
    claims = jwt.decode(_issue(AFTER), options={"verify_signature": False})

    assert AFTER.verify(_signed({"alg": ALGORITHM, "kid": AFTER.kid}, claims, CURRENT), now=NOW).role is Role.CLINICIAN


async def test_a_refresh_token_keeps_working_across_a_rotation(
    factory: Factory, services: Services, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    before = services.accounts
    session = await before.login(staff.email, PASSWORD, ip=None, now=now)
    rotated_tokens = AccessTokens(
        secret_key=CURRENT,
        ttl=before.tokens.ttl,
        previous_keys=(before.tokens.secret_key,),
        started_at=now + timedelta(seconds=30),
    )
    # The sealer does not matter here: no second factor is enrolled.
    after = AccountService(
        passwords=before.passwords, tokens=rotated_tokens, policy=before.policy, sealer=Sealer(CURRENT)
    )

    renewed = await after.refresh(session.refresh_token, now=now + timedelta(minutes=1))

    assert jwt.get_unverified_header(renewed.access_token)["kid"] == key_id(CURRENT)
    assert after.tokens.verify(session.access_token, now=now + timedelta(minutes=1)).account_id == staff.account.id
    assert after.tokens.verify(renewed.access_token, now=now + timedelta(minutes=1)).account_id == staff.account.id
