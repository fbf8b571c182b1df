"""Argon2id password hashing, run off the event loop (a hash costs tens of milliseconds of CPU), and the password
policy: 12 to 128 characters, not a common password, not the account's own email.

`common_passwords.txt` is SecLists' `Passwords/Common-Credentials/10k-most-common.txt` (MIT licence), one password
a line, unchanged. Most of its entries are shorter than the minimum length; they still refuse the common ones padded
with digits or symbols ("password1234!") and repeated ones ("monkeymonkey").
"""

from __future__ import annotations

import asyncio
import string
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api.domain.errors import BadInput

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
# Fewer different characters than this is a pattern, not a password ("aaaaaaaaaaaa", "121212121212").
MIN_DISTINCT_CHARACTERS = 5
# An email local part shorter than this turns up inside passwords by chance ("al@…"); only equality is refused.
MIN_LOCAL_PART_MATCH = 4
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")
_PADDING = string.digits + string.punctuation + string.whitespace


class Passwords:
    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verified when an email is unknown, so that a miss costs as long as a hit.
        self._dummy_hash = self._hasher.hash("interlude-timing-equaliser")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def check_password_policy(password: str, field: str = "password", *, email: str | None = None) -> None:
    """BAD_USER_INPUT naming `field` for a password the policy refuses. Messages never quote the password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadInput(field, f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadInput(field, f"must be at most {MAX_PASSWORD_LENGTH} characters")
    lowered = password.lower()
    if len(set(lowered)) < MIN_DISTINCT_CHARACTERS:
        raise BadInput(field, "is too repetitive; choose a phrase of several words")
    if is_common_password(lowered):
        raise BadInput(field, "is a commonly used password; choose a phrase of several words")
    if email is not None and _contains_email(lowered, email.strip().lower()):
        raise BadInput(field, "must not contain your email address")


def is_common_password(password: str) -> bool:
    """In the list, compared case-insensitively, also once stripped of leading and trailing digits and symbols, and
    when it is one entry repeated."""
    lowered = password.lower()
    stripped = lowered.strip(_PADDING)
    units = {lowered, stripped, _repeated_unit(lowered), _repeated_unit(stripped)}
    candidates = units | {unit.strip(_PADDING) for unit in units}
    return not candidates.isdisjoint(common_passwords())


@cache
def common_passwords() -> frozenset[str]:
    """Read once, at first use (about 75 kB, well under a millisecond)."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip())


def _repeated_unit(value: str) -> str:
    """`value`'s shortest unit when it is that unit repeated ("abcabc" → "abc"), else `value`."""
    for size in range(1, len(value) // 2 + 1):
        if len(value) % size == 0 and value[:size] * (len(value) // size) == value:
            return value[:size]
    return value


def _contains_email(password: str, email: str) -> bool:
    local = email.partition("@")[0]
    if email and email in password:
        return True
    return bool(local) and (password == local or (len(local) >= MIN_LOCAL_PART_MATCH and local in password))
