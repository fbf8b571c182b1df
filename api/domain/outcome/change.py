"""Change against a baseline and the IMMPACT benchmarks for pain intensity (research/domain.md §2.1).

Signs: change = value − baseline, so a negative change is less pain. Categories judge the reduction (−percent).
MINIMAL starts at 10 %, the lower end of IMMPACT's "minimally important" 10–20 % band.
"""

from __future__ import annotations

from enum import StrEnum

# Means of integer ratings are not exact in binary: 3.5 against 5 must count as a 30 % reduction, not 29.999…
TOLERANCE = 1e-9
TWO_POINTS = 2.0


class Category(StrEnum):
    SUBSTANTIAL = "SUBSTANTIAL"  # ≥ 50 % reduction
    MODERATE = "MODERATE"  # ≥ 30 %
    MINIMAL = "MINIMAL"  # ≥ 10 %
    NONE = "NONE"  # less than 10 %, or worse


THRESHOLDS = ((50.0, Category.SUBSTANTIAL), (30.0, Category.MODERATE), (10.0, Category.MINIMAL))


def reaches(value: float, threshold: float) -> bool:
    return value >= threshold - TOLERANCE


def change(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None:
        return None
    return value - baseline


def percent_change(value: float | None, baseline: float | None) -> float | None:
    """None when the baseline is 0: no pain to reduce, so a percentage means nothing."""
    if value is None or baseline is None or baseline == 0:
        return None
    return 100.0 * (value - baseline) / baseline


def category(pct: float | None) -> Category | None:
    if pct is None:
        return None
    return next((c for threshold, c in THRESHOLDS if reaches(-pct, threshold)), Category.NONE)


def two_point(value: float | None, baseline: float | None) -> bool | None:
    """The ≥ 2-point absolute reduction used by Mangnus and Pomeroy (research/domain.md §2.2)."""
    diff = change(value, baseline)
    return None if diff is None else reaches(-diff, TWO_POINTS)
