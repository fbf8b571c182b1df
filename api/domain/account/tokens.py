"""Short-lived access tokens (JWT, HS256, with `kid`) and opaque refresh tokens stored as hashes.

Key rotation: tokens are signed with the current secret key and carry its `kid`; a token whose `kid` names one of
the previous keys is verified with that key, and any other `kid` is refused. A previous key may have leaked (that is
often why it is rotated), and its holder can sign any claims with it: so its tokens are accepted only if issued no
later than `started_at` (when this process built its services, after the rotation) and for no longer than the
access-token lifetime. Every previous-key token is then dead one lifetime after the restart that rotated the key,
whatever its holder signs. Refresh tokens are random strings looked up by hash, so a rotation leaves them working.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

import jwt

from api.domain.actor import Actor, RequestMeta, Role
from api.domain.errors import Forbidden, Unauthenticated

ALGORITHM = "HS256"
ISSUER = "interlude"
# How far a token's issue time may lie ahead of our clock (replicas' clocks drift a little).
CLOCK_LEEWAY = timedelta(seconds=60)
# The scope of a session that may do nothing but enrol a second factor (its clinic requires one).
ENROLMENT_SCOPE = "otp-enrolment"
# Verified tokens remembered per process (`AccessTokens._checked`): about a kilobyte each.
CHECKED_TOKENS = 4096


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def key_id(secret_key: str) -> str:
    # Names the key without revealing it; lets a later key rotation accept old tokens by kid.
    return sha256_hex("kid:" + secret_key)[:12]


class EnrolmentRequired(Forbidden):
    """A valid token of a session limited to enrolling a second factor. It carries the actor, so that the few
    operations such a session may use (me, enrollTotp, confirmTotp) can act for it; everything else is refused."""

    def __init__(self, actor: Actor) -> None:
        super().__init__(
            "your clinic requires a second factor: enrol one (enrollTotp, confirmTotp), then refresh the session"
        )
        self.actor = actor


class Identity(NamedTuple):
    account_id: UUID
    role: Role
    clinic_id: UUID
    patient_id: UUID | None


class Checked(NamedTuple):
    key: str
    claims: dict[str, Any]
    issued_at: int
    expires_at: int
    # Whom the claims name, read once; None when they name nobody valid (refused at every use).
    identity: Identity | None


@dataclass(frozen=True)
class AccessTokens:
    secret_key: str
    ttl: timedelta
    # Keys that signed tokens which may still be in use; nothing new is signed with them.
    previous_keys: Sequence[str] = field(default=())
    # The latest issue time accepted from a previous key: this process's start. Required with previous keys.
    started_at: datetime | None = None
    # Tokens whose signature and claims were checked, with the key that signed them: a client sends the same token
    # with every request for its lifetime, and the check is a fixed function of the token and this object's keys.
    # Everything that depends on `now` is judged again on every use. Bounded; the oldest checked leaves first.
    _checked: OrderedDict[str, Checked] = field(default_factory=OrderedDict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.previous_keys and self.started_at is None:
            raise ValueError("previous signing keys need started_at, the latest issue time accepted from them")

    @property
    def kid(self) -> str:
        return key_id(self.secret_key)

    def _key_for(self, kid: object) -> str:
        for secret in (self.secret_key, *self.previous_keys):
            if kid == key_id(secret):
                return secret
        raise Unauthenticated("unknown signing key")

    def _checked_claims(self, token: str) -> Checked:
        """The signing key and the claims of a token we issued (signature, issuer, required claims checked)."""
        known = self._checked.get(token)
        if known is not None:
            self._checked.move_to_end(token)
            return known
        try:
            # The kid only chooses among our own keys; the signature is then checked with the key it names.
            key = self._key_for(jwt.get_unverified_header(token).get("kid"))
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                # PyJWT would judge exp, iat and nbf by the wall clock; all time checks use the injected `now`.
                options={
                    "require": ["exp", "iat", "sub", "role", "cid"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
            checked = Checked(key, claims, int(claims["iat"]), int(claims["exp"]), _identity(claims))
        # OverflowError: an instant of `Infinity` (JSON as Python reads it).
        except (jwt.PyJWTError, TypeError, ValueError, OverflowError) as exc:
            raise Unauthenticated("invalid access token") from exc
        self._checked[token] = checked
        if len(self._checked) > CHECKED_TOKENS:
            self._checked.popitem(last=False)
        return checked

    def _retired_key_allows(self, issued_at: int, expires_at: int) -> bool:
        """A previous key's token: issued before this process started, for at most one lifetime."""
        if self.started_at is None:
            return False
        return issued_at <= self.started_at.timestamp() and expires_at - issued_at <= self.ttl.total_seconds()

    def issue(
        self,
        *,
        account_id: UUID,
        role: Role,
        clinic_id: UUID,
        patient_id: UUID | None,
        now: datetime,
        enrolment_only: bool = False,
    ) -> tuple[str, datetime]:
        expires_at = now + self.ttl
        claims = {
            "iss": ISSUER,
            "typ": "access",
            "sub": str(account_id),
            "role": role.value,
            "cid": str(clinic_id),
            "pid": str(patient_id) if patient_id else None,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        if enrolment_only:
            claims["scp"] = ENROLMENT_SCOPE
        token = jwt.encode(claims, self.secret_key, algorithm=ALGORITHM, headers={"kid": self.kid})
        return token, expires_at

    def verify(self, token: str, *, now: datetime, meta: RequestMeta | None = None) -> Actor:
        """The token's actor; UNAUTHENTICATED for anything not issued by us or expired, FORBIDDEN
        (`EnrolmentRequired`) for a session limited to enrolling a second factor."""
        actor, scope = self._verify(token, now=now, meta=meta)
        if scope == ENROLMENT_SCOPE:
            raise EnrolmentRequired(actor)
        if scope is not None:
            raise Unauthenticated("invalid access token")
        return actor

    def _verify(self, token: str, *, now: datetime, meta: RequestMeta | None) -> tuple[Actor, object]:
        key, claims, issued_at, expires_at, identity = self._checked_claims(token)
        if claims.get("typ") != "access" or issued_at > (now + CLOCK_LEEWAY).timestamp():
            raise Unauthenticated("invalid access token")
        if key != self.secret_key and not self._retired_key_allows(issued_at, expires_at):
            raise Unauthenticated("invalid access token")
        if expires_at <= now.timestamp():
            raise Unauthenticated("access token expired")
        if identity is None:
            raise Unauthenticated("invalid access token")
        account_id, role, clinic_id, patient_id = identity
        actor = Actor(
            account_id=account_id, role=role, clinic_id=clinic_id, patient_id=patient_id, meta=meta or RequestMeta()
        )
        return actor, claims.get("scp")


def _identity(claims: dict[str, Any]) -> Identity | None:
    """Whom a token's claims name; None for anything but an account of a role that holds tokens."""
    try:
        role = Role(claims["role"])
        if role is Role.SYSTEM:
            return None  # system actors never hold tokens
        patient = claims.get("pid")
        return Identity(UUID(claims["sub"]), role, UUID(claims["cid"]), UUID(patient) if patient else None)
    # UUID() of a number or a list fails with AttributeError.
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
