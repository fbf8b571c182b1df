"""Time-based one-time passwords (RFC 6238): SHA-1, 6 digits, 30-second steps, one step of clock drift either way.

Everything here is arithmetic on a secret and an injected time; storing the secret and refusing a replayed step is
the caller's work (`second_factor.py`).
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

ISSUER = "Interlude"
DIGITS = 6
STEP_SECONDS = 30
# A phone's clock a little off still works: the previous and the next step are accepted too.
DRIFT_STEPS = 1


def new_secret() -> str:
    """160 random bits in base32, the length RFC 4226 recommends and authenticator apps expect."""
    return pyotp.random_base32()


def step_at(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    return _totp(secret).generate_otp(step)


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The step within the drift window whose code this is, or None. Every step of the window is compared, in
    constant time, so that the answer's timing does not say which one matched."""
    code = code.replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    current = step_at(now)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(code_at(secret, step), code):
            found = step
    return found


def provisioning_uri(secret: str, account_name: str) -> str:
    """The `otpauth://` URI an authenticator app scans (as a QR code) to add the account."""
    return _totp(secret).provisioning_uri(name=account_name, issuer_name=ISSUER)


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
