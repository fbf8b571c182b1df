"""Chart-ready series: one date and one value per bucket, as plain lists. No database here.

A bucket's value is the mean of its days' values (not of its entries: a day with three entries weighs as much as a
day with one). Buckets are labelled by their first day: the day itself, the Monday of the ISO week, or the first of
the month, even when the requested range starts later; only days inside the range count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from statistics import fmean

from api.domain.outcome.daily import Day, rolling_mean, values_by_date

MAX_SPAN_DAYS = 366


class Metric(StrEnum):
    PAIN_AVERAGE = "PAIN_AVERAGE"
    PAIN_WORST = "PAIN_WORST"
    PAIN_NOW = "PAIN_NOW"
    SLEEP_HOURS = "SLEEP_HOURS"
    SLEEP_QUALITY = "SLEEP_QUALITY"
    MOOD = "MOOD"
    # The rolling 7-day mean of daily average pain (at least 4 of the 7 days with data), whatever the course.
    PAIN_ROLLING7 = "PAIN_ROLLING7"


class Bucket(StrEnum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


MEASURE = {
    Metric.PAIN_AVERAGE: "pain_average",
    Metric.PAIN_WORST: "pain_worst",
    Metric.PAIN_NOW: "pain_now",
    Metric.SLEEP_HOURS: "sleep_hours",
    Metric.SLEEP_QUALITY: "sleep_quality",
    Metric.MOOD: "mood",
    Metric.PAIN_ROLLING7: "pain_average",
}
# Days before the range a metric needs data from.
LOOKBACK = {Metric.PAIN_ROLLING7: 6}


@dataclass(frozen=True)
class Series:
    metric: Metric
    bucket: Bucket
    dates: list[date]
    values: list[float | None]  # None: no data in the bucket
    counts: list[int]  # days with a value in the bucket


def bucket_start(day: date, bucket: Bucket) -> date:
    if bucket is Bucket.WEEK:
        return day - timedelta(days=day.weekday())
    if bucket is Bucket.MONTH:
        return day.replace(day=1)
    return day


def daily_values(days: Sequence[Day], metric: Metric, start: date, end: date) -> dict[date, float]:
    """The metric's value per day in [start, end)."""
    by_date = values_by_date(days, MEASURE[metric])
    span = range((end - start).days)
    if metric is Metric.PAIN_ROLLING7:
        rolled = {d: rolling_mean(by_date, d) for d in (start + timedelta(days=i) for i in span)}
        return {d: v for d, v in rolled.items() if v is not None}
    return {d: v for d, v in by_date.items() if start <= d < end}


def series(days: Sequence[Day], metric: Metric, bucket: Bucket, start: date, end: date) -> Series:
    """Every bucket that overlaps [start, end), oldest first, whether or not it holds data."""
    values = daily_values(days, metric, start, end)
    grouped: dict[date, list[float]] = {}
    for offset in range((end - start).days):
        day = start + timedelta(days=offset)
        found = grouped.setdefault(bucket_start(day, bucket), [])
        if (value := values.get(day)) is not None:
            found.append(value)
    return Series(
        metric=metric,
        bucket=bucket,
        dates=list(grouped),
        values=[fmean(v) if v else None for v in grouped.values()],
        counts=[len(v) for v in grouped.values()],
    )
