"""Email addresses: normalised to lower case, checked for shape only (delivery is not our concern)."""

from __future__ import annotations

import re

from api.domain.errors import BadInput

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL = 320


def check_email(email: str, field: str = "email") -> str:
    email = email.strip().lower()
    if len(email) > MAX_EMAIL or not EMAIL_RE.match(email):
        raise BadInput(field, "is not an email address")
    return email
