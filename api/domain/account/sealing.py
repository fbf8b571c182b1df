"""Secrets at rest (TOTP seeds): AES-256-GCM under a key derived from the installation's secret key.

A sealed value names the key that sealed it (`v1.<kid>.<base64>`), so that after a rotation of
INTERLUDE_SECRET_KEY values sealed under a key still listed in INTERLUDE_PREVIOUS_SECRET_KEYS open; they are sealed
again under the current key when next used, and all at once by `interlude reseal-secrets`
(`SecondFactor.reseal_all`), after which the previous key can go. The owner's id is bound in as associated data: a
sealed value copied onto another row does not open there.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
NONCE_BYTES = 12
# Domain separation: a key derived for sealing is never the one that signs tokens.
HKDF_INFO = b"interlude/seal/v1"


class SealError(Exception):
    """A sealed value that cannot be opened: its key is no longer configured, or it was altered."""


@dataclass(frozen=True)
class Opened:
    plaintext: str
    # Sealed under a previous key: the caller should store `Sealer.seal(...)` of it again.
    stale: bool


class _Key:
    def __init__(self, secret_key: str) -> None:
        raw = HKDF(algorithm=SHA256(), length=32, salt=None, info=HKDF_INFO).derive(secret_key.encode())
        self.aead = AESGCM(raw)
        # Names the derived key without revealing it or the secret it came from.
        self.kid = hashlib.sha256(b"kid:" + raw).hexdigest()[:12]


class Sealer:
    def __init__(self, secret_key: str, previous_keys: Sequence[str] = ()) -> None:
        self._current = _Key(secret_key)
        self._keys = {k.kid: k for k in (_Key(s) for s in previous_keys)}
        self._keys[self._current.kid] = self._current

    def seal(self, plaintext: str, *, owner: UUID) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._current.aead.encrypt(nonce, plaintext.encode(), owner.bytes)
        body = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{VERSION}.{self._current.kid}.{body}"

    def open(self, sealed: str, *, owner: UUID) -> Opened:
        version, _, rest = sealed.partition(".")
        kid, _, body = rest.partition(".")
        key = self._keys.get(kid)
        if version != VERSION or key is None:
            raise SealError(f"no configured key opens this value (kid {kid!r})")
        try:
            raw = base64.urlsafe_b64decode(body)
            plaintext = key.aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], owner.bytes)
        except (InvalidTag, ValueError) as exc:
            raise SealError(f"sealed value does not open under key {kid!r}") from exc
        return Opened(plaintext.decode(), stale=key is not self._current)
