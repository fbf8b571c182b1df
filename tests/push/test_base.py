"""The pieces every provider shares: Retry-After, status classification, fingerprints, the clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import format_datetime

import pytest

from api.domain.push.providers.base import (
    Outcome,
    epoch_seconds,
    retry_after_seconds,
    status_outcome,
    token_fingerprint,
)
from tests.push.support import NOW


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        (format_datetime(NOW + timedelta(minutes=2), usegmt=True), 120.0),
        (format_datetime(NOW - timedelta(minutes=2), usegmt=True), 0.0),  # already past: retry now
        ("Wed, 26 Nov 2026 12:00:30 GMT", 30.0),
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_against_the_given_now(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, NOW) == seconds


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (400, Outcome.FAILED),
        (401, Outcome.FAILED),
        (403, Outcome.FAILED),
        (404, Outcome.FAILED),
        (408, Outcome.RETRY),
        (413, Outcome.FAILED),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (501, Outcome.FAILED),
        (502, Outcome.RETRY),
        (503, Outcome.RETRY),
        (504, Outcome.RETRY),
        (505, Outcome.FAILED),
        (302, Outcome.FAILED),  # redirects are never followed
    ],
)
def test_statuses_without_a_reason_are_classified(status: int, outcome: Outcome) -> None:
    assert status_outcome(status) == outcome


def test_a_token_fingerprint_is_short_stable_and_not_the_token() -> None:
    token = "a1" * 32

    assert token_fingerprint(token) == token_fingerprint(token)
    assert token_fingerprint(token) != token_fingerprint(token + "0")
    assert len(token_fingerprint(token)) == 12
    assert token_fingerprint(token) not in token


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        epoch_seconds(datetime(2026, 11, 26, 12, 0))  # the naive value is the point


def test_epoch_seconds_of_an_aware_now() -> None:
    assert epoch_seconds(NOW) == 1_795_694_400
