"""Reading what reached a fake provider the way an outsider could, and looking for health data in it."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

from tests.push.fakes.server import Received

CLINIC_NAME = "Sunrise Wellness Ketamine Clinic"
# Diagnoses, drugs, symptoms, instruments, scores, and the clinic's name: none may reach a provider.
DENY_WORDS = (
    "ketamine",
    "esketamine",
    "spravato",
    "infusion",
    "infusions",
    "pain",
    "painful",
    "depression",
    "depressed",
    "anxiety",
    "ptsd",
    "migraine",
    "fibromyalgia",
    "crps",
    "phq",
    "phq9",
    "phq2",
    "gad",
    "gad7",
    "suicide",
    "suicidal",
    "dose",
    "dosage",
    "mg",
    "score",
    "severity",
    "symptom",
    "symptoms",
    "diagnosis",
    "side effect",
    "nausea",
    "dissociation",
    *CLINIC_NAME.lower().split(),
)
_DENY = re.compile(r"\b(" + "|".join(re.escape(w) for w in DENY_WORDS) + r")\b", re.IGNORECASE)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def _b64json(segment: str) -> str:
    return json.dumps(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def _decoded_jwt(match: re.Match[str]) -> str:
    header, claims, _signature = match.group(0).split(".")
    return f"JWT header={_b64json(header)} claims={_b64json(claims)}"


def readable(received: Received, opaque: Iterable[str]) -> str:
    """Everything in one request as readable text: the path, every header, the body (decrypted when it was
    encrypted, form-decoded when a form), each JWT replaced by its decoded header and claims, and the given random
    values (device tokens, keys, access tokens) masked."""
    body = received.plaintext if received.plaintext is not None else received.body
    text = body.decode("utf-8", errors="replace")
    if received.header("content-type") == "application/x-www-form-urlencoded":
        text = unquote_plus(text)
    lines = [f"{received.method} {received.path}", *(f"{k}: {v}" for k, v in received.headers), text]
    readable_text = _JWT.sub(_decoded_jwt, "\n".join(lines))
    for value in sorted(opaque, key=len, reverse=True):
        readable_text = readable_text.replace(value, "<opaque>")
    return readable_text


def leaks(text: str, *, allowed_ids: Iterable[str]) -> list[str]:
    """Denied words found in `text`, and any UUID other than the allowed ones."""
    allowed = {i.lower() for i in allowed_ids}
    words = [m.group(0).lower() for m in _DENY.finditer(text)]
    ids = [m.group(0) for m in _UUID.finditer(text) if m.group(0).lower() not in allowed]
    return words + [f"foreign id {i}" for i in ids]
