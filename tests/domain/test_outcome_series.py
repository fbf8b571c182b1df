"""Chart series from constructed days: buckets, labels, means of days and the rolling metric, by hand."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from api.domain.outcome.daily import Day
from api.domain.outcome.series import Bucket, Metric, bucket_start, series


def nov(d: int) -> date:
    return date(2026, 11, d)


def test_daily_buckets_hold_every_day_of_the_range_with_none_for_days_without_data() -> None:
    days = [Day(nov(1), pain_average=9), Day(nov(2), pain_average=4), Day(nov(4), pain_average=6, mood=7)]

    found = series(days, Metric.PAIN_AVERAGE, Bucket.DAY, nov(2), nov(5))

    assert (found.dates, found.values, found.counts) == ([nov(2), nov(3), nov(4)], [4.0, None, 6.0], [1, 0, 1])


def test_each_metric_reads_its_own_measure() -> None:
    days = [Day(nov(4), pain_average=6, pain_worst=8, pain_now=5, sleep_hours=7.5, sleep_quality=3, mood=7)]
    expected = {
        Metric.PAIN_AVERAGE: 6,
        Metric.PAIN_WORST: 8,
        Metric.PAIN_NOW: 5,
        Metric.SLEEP_HOURS: 7.5,
        Metric.SLEEP_QUALITY: 3,
        Metric.MOOD: 7,
    }

    assert {m: series(days, m, Bucket.DAY, nov(4), nov(5)).values[0] for m in expected} == expected


def test_weekly_buckets_are_iso_weeks_labelled_by_monday_counting_only_days_in_range() -> None:
    # Range Wed 4 … Mon 16 November. Week of Mon 2: the 2nd (9) lies before the range; the 4th (6) and 6th (3)
    # count → 4.5. Week of the 9th: 5. Week of the 16th: only the 16th, 2 (the 17th is outside).
    days = [Day(nov(d), pain_average=v) for d, v in ((2, 9), (4, 6), (6, 3), (10, 5), (16, 2), (17, 10))]

    found = series(days, Metric.PAIN_AVERAGE, Bucket.WEEK, nov(4), nov(17))

    assert (found.dates, found.values, found.counts) == ([nov(2), nov(9), nov(16)], [4.5, 5.0, 2.0], [2, 1, 1])


def test_monthly_buckets_average_days_not_entries_and_keep_empty_months() -> None:
    # 30 Oct 8 and 31 Oct 6 → 7; November: 4 and 6 → 5; 1 December: no data. (Several entries on one day were
    # already folded into that day's mean: each day weighs once.)
    days = [Day(date(2026, 10, 30), mood=8), Day(date(2026, 10, 31), mood=6), Day(nov(3), mood=4), Day(nov(9), mood=6)]

    found = series(days, Metric.MOOD, Bucket.MONTH, date(2026, 10, 30), date(2026, 12, 2))

    assert found.dates == [date(2026, 10, 1), nov(1), date(2026, 12, 1)]
    assert (found.values, found.counts) == ([7.0, 5.0, None], [2, 2, 0])


def test_rolling_seven_day_pain_looks_back_before_the_range() -> None:
    # 1 Nov: 26 Oct–1 Nov hold 1, 2, 3 (27–29 Oct) and 6 → 12/4 = 3. 2 Nov: 27 Oct–2 Nov, the same four → 3.
    # 3 Nov: 28 Oct–3 Nov hold 2, 3, 6 → three days, no mean.
    days = [Day(date(2026, 10, d), pain_average=v) for d, v in ((27, 1), (28, 2), (29, 3))]
    days.append(Day(nov(1), pain_average=6))

    found = series(days, Metric.PAIN_ROLLING7, Bucket.DAY, nov(1), nov(4))

    assert (found.values, found.counts) == ([3.0, 3.0, None], [1, 1, 0])


@pytest.mark.parametrize(
    ("bucket", "expected"),
    [(Bucket.DAY, 365), (Bucket.WEEK, 53), (Bucket.MONTH, 13)],
)
def test_a_year_is_one_list_per_field(bucket: Bucket, expected: int) -> None:
    # 27 Nov 2025 (a Thursday) … 26 Nov 2026: 365 days; ISO weeks from Mon 24 Nov 2025 to Mon 23 Nov 2026: 53;
    # months November 2025 … November 2026: 13.
    start = date(2025, 11, 27)
    found = series([], Metric.PAIN_AVERAGE, bucket, start, start + timedelta(days=365))

    assert len(found.dates) == len(found.values) == len(found.counts) == expected
    assert found.values == [None] * expected


@pytest.mark.parametrize(
    ("day", "bucket", "expected"),
    [
        (nov(1), Bucket.WEEK, date(2026, 10, 26)),  # a Sunday belongs to the week that began the Monday before
        (nov(2), Bucket.WEEK, nov(2)),
        (nov(30), Bucket.MONTH, nov(1)),
        (nov(30), Bucket.DAY, nov(30)),
    ],
)
def test_bucket_labels(day: date, bucket: Bucket, expected: date) -> None:
    assert bucket_start(day, bucket) == expected
