"""Access tokens: short-lived HS256 JWTs with a `kid`, judged only by the injected clock."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import jwt
import pytest

from api.domain.account import tokens as tokens_module
from api.domain.account.tokens import ALGORITHM, ISSUER, AccessTokens
from api.domain.actor import RequestMeta, Role
from api.domain.errors import Unauthenticated

SECRET = "unit-test-secret-key-that-is-long-enough-0123"
TOKENS = AccessTokens(secret_key=SECRET, ttl=timedelta(minutes=15))
# Far from today's wall clock on purpose: verification must not consult it.
FUTURE = datetime(2031, 5, 17, 9, 30, tzinfo=UTC)
PAST = datetime(2019, 1, 2, 3, 4, tzinfo=UTC)


def _issue(tokens: AccessTokens = TOKENS, *, now: datetime = FUTURE, role: Role = Role.PATIENT) -> str:
    token, _ = tokens.issue(
        account_id=uuid4(),
        role=role,
        clinic_id=uuid4(),
        patient_id=uuid4() if role is Role.PATIENT else None,
        now=now,
    )
    return token


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64_json(segment: str) -> dict[str, object]:
    padded = segment + "=" * (-len(segment) % 4)
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(padded))
    return decoded


def _b64(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("now", [FUTURE, PAST])
def test_a_token_round_trips_at_any_injected_time(now: datetime) -> None:
    account_id, clinic_id, patient_id = uuid4(), uuid4(), uuid4()
    meta = RequestMeta(request_id="r-1", ip="192.0.2.1")
    token, expires_at = TOKENS.issue(
        account_id=account_id, role=Role.PATIENT, clinic_id=clinic_id, patient_id=patient_id, now=now
    )

    actor = TOKENS.verify(token, now=now, meta=meta)

    assert expires_at == now + timedelta(minutes=15)
    assert (actor.account_id, actor.role, actor.clinic_id, actor.patient_id) == (
        account_id,
        Role.PATIENT,
        clinic_id,
        patient_id,
    )
    assert actor.meta is meta


def test_the_header_names_the_key_and_hs256_and_the_claims_carry_no_email() -> None:
    token = _issue(role=Role.CLINICIAN)
    header = jwt.get_unverified_header(token)
    claims = _b64_json(_segments(token)[1])

    assert header["alg"] == ALGORITHM == "HS256"
    assert header["kid"] == TOKENS.kid
    assert SECRET not in header["kid"]
    assert claims["iss"] == ISSUER
    assert claims["role"] == "CLINICIAN"
    assert claims["pid"] is None
    assert claims["exp"] == int((FUTURE + timedelta(minutes=15)).timestamp())
    assert not any("@" in str(value) for value in claims.values())


def test_a_token_is_valid_until_fifteen_minutes_and_expired_from_then() -> None:
    token = _issue()

    TOKENS.verify(token, now=FUTURE + timedelta(minutes=14, seconds=59))
    with pytest.raises(Unauthenticated, match="expired"):
        TOKENS.verify(token, now=FUTURE + timedelta(minutes=15))
    with pytest.raises(Unauthenticated, match="expired"):
        TOKENS.verify(token, now=FUTURE + timedelta(days=3))


def test_a_token_issued_ahead_of_the_clock_is_refused_beyond_a_small_leeway() -> None:
    token = _issue(now=FUTURE)

    TOKENS.verify(token, now=FUTURE - timedelta(seconds=30))
    with pytest.raises(Unauthenticated):
        TOKENS.verify(token, now=FUTURE - timedelta(hours=1))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"role": "ADMIN"}, id="role-raised"),
        pytest.param({"cid": str(uuid4())}, id="other-clinic"),
        pytest.param({"pid": str(uuid4())}, id="other-patient"),
        pytest.param({"exp": 4_102_444_800}, id="extended-expiry"),
    ],
)
def test_a_tampered_payload_is_refused(change: dict[str, object]) -> None:
    header, payload, signature = _segments(_issue())
    forged = ".".join([header, _b64({**_b64_json(payload), **change}), signature])

    with pytest.raises(Unauthenticated, match="invalid access token"):
        TOKENS.verify(forged, now=FUTURE)


def test_a_tampered_signature_is_refused() -> None:
    header, payload, signature = _segments(_issue())
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    with pytest.raises(Unauthenticated):
        TOKENS.verify(".".join([header, payload, flipped]), now=FUTURE)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    other = AccessTokens(secret_key="another-secret-key-that-is-long-enough-98765", ttl=timedelta(minutes=15))

    with pytest.raises(Unauthenticated):
        TOKENS.verify(_issue(other), now=FUTURE)


def test_another_secret_is_refused_even_when_it_claims_our_kid() -> None:
    claims = _b64_json(_segments(_issue())[1])
    forged = jwt.encode(claims, "attacker-secret-" + "x" * 32, algorithm="HS256", headers={"kid": TOKENS.kid})

    with pytest.raises(Unauthenticated, match="invalid access token"):
        TOKENS.verify(forged, now=FUTURE)


def test_an_unsigned_token_is_refused() -> None:
    header, payload, _ = _segments(_issue())
    unsigned_header = _b64({**_b64_json(header), "alg": "none"})

    with pytest.raises(Unauthenticated):
        TOKENS.verify(f"{unsigned_header}.{payload}.", now=FUTURE)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"typ": "refresh"}, id="not-an-access-token"),
        pytest.param({"role": "SYSTEM"}, id="system-role"),
        pytest.param({"role": "ROOT"}, id="unknown-role"),
        pytest.param({"sub": "not-a-uuid"}, id="bad-subject"),
        pytest.param({"sub": 123}, id="numeric-subject"),
        pytest.param({"cid": ["a"]}, id="list-clinic"),
        pytest.param({"pid": 5}, id="numeric-patient"),
        pytest.param({"exp": float("inf")}, id="infinite-expiry"),
        pytest.param({"iss": "someone-else"}, id="other-issuer"),
        pytest.param({"iat": "yesterday"}, id="bad-iat"),
    ],
)
def test_well_signed_but_malformed_claims_are_refused(change: dict[str, object]) -> None:
    claims = {**_b64_json(_segments(_issue())[1]), **change}
    token = jwt.encode(claims, SECRET, algorithm=ALGORITHM, headers={"kid": TOKENS.kid})

    # Refused at every use; a token whose signature and claims passed the first check is then judged from what was
    # kept of it.
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            TOKENS.verify(token, now=FUTURE)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x.y.z"])
def test_garbage_is_refused_as_unauthenticated(garbage: str) -> None:
    with pytest.raises(Unauthenticated):
        TOKENS.verify(garbage, now=FUTURE)


def test_a_token_is_checked_once_and_its_times_judged_on_every_use(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = AccessTokens(secret_key=SECRET, ttl=timedelta(minutes=15))
    token = _issue(tokens)
    decoded: list[str] = []
    real_decode = jwt.decode

    def counted(value: str, *args: object, **kwargs: object) -> object:
        decoded.append(value)
        return real_decode(value, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counted)
    first = tokens.verify(token, now=FUTURE)
    again = tokens.verify(token, now=FUTURE + timedelta(minutes=5))
    assert (again.account_id, again.role, again.clinic_id) == (first.account_id, first.role, first.clinic_id)
    assert decoded == [token]
    # Remembered, yet expired all the same once the clock passes its expiry.
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.verify(token, now=FUTURE + timedelta(minutes=15))
    # A refused token is never remembered: each attempt is checked, and refused, again.
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            tokens.verify(forged, now=FUTURE)
    assert decoded == [token, forged, forged]


def test_remembered_tokens_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens_module, "CHECKED_TOKENS", 3)
    tokens = AccessTokens(secret_key=SECRET, ttl=timedelta(minutes=15))
    issued = [_issue(tokens) for _ in range(5)]
    for token in issued:
        tokens.verify(token, now=FUTURE)
    assert list(tokens._checked) == issued[2:]
