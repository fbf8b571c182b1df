"""Short-lived access tokens (JWT, HS256, with `kid`) and opaque refresh tokens stored as hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import jwt

from api.domain.actor import Actor, RequestMeta, Role
from api.domain.errors import Unauthenticated

ALGORITHM = "HS256"
ISSUER = "interlude"
# How far a token's issue time may lie ahead of our clock (replicas' clocks drift a little).
CLOCK_LEEWAY = timedelta(seconds=60)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class AccessTokens:
    secret_key: str
    ttl: timedelta

    @property
    def kid(self) -> str:
        # Names the key without revealing it; lets a later key rotation accept old tokens by kid.
        return sha256_hex("kid:" + self.secret_key)[:12]

    def issue(
        self, *, account_id: UUID, role: Role, clinic_id: UUID, patient_id: UUID | None, now: datetime
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
        token = jwt.encode(claims, self.secret_key, algorithm=ALGORITHM, headers={"kid": self.kid})
        return token, expires_at

    def verify(self, token: str, *, now: datetime, meta: RequestMeta | None = None) -> Actor:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self.kid:
                raise Unauthenticated("unknown signing key")
            claims = jwt.decode(
                token,
                self.secret_key,
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
            issued_at, expires_at = int(claims["iat"]), int(claims["exp"])
        except (jwt.PyJWTError, TypeError, ValueError) as exc:
            raise Unauthenticated("invalid access token") from exc
        if claims.get("typ") != "access" or issued_at > (now + CLOCK_LEEWAY).timestamp():
            raise Unauthenticated("invalid access token")
        if expires_at <= now.timestamp():
            raise Unauthenticated("access token expired")
        try:
            role = Role(claims["role"])
            if role is Role.SYSTEM:
                raise ValueError("system actors never hold tokens")
            return Actor(
                account_id=UUID(claims["sub"]),
                role=role,
                clinic_id=UUID(claims["cid"]),
                patient_id=UUID(claims["pid"]) if claims.get("pid") else None,
                meta=meta or RequestMeta(),
            )
        except (ValueError, KeyError) as exc:
            raise Unauthenticated("invalid access token") from exc
