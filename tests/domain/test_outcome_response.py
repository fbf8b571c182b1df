"""Treatment response computed from constructed diaries; every expected value is worked out by hand in the test."""

from __future__ import annotations

from datetime import date, timedelta
from math import sqrt

import pytest

from api.domain.errors import BadInput
from api.domain.outcome.change import Category, category, percent_change, two_point
from api.domain.outcome.daily import Day
from api.domain.outcome.response import (
    ReliefStatus,
    baseline,
    course_outcome,
    pain_area,
    pain_areas,
    response_days,
)
from api.domain.outcome.rules import RULES, rule_named

D0 = date(2026, 10, 1)  # the first session's local day
ROLLING30 = RULES["rolling30.v1"]
MINUS_ONE = RULES["baseline_minus_one.v1"]


def day(offset: int) -> date:
    return D0 + timedelta(days=offset)


def pains(values: dict[int, float]) -> dict[date, float]:
    return {day(offset): v for offset, v in values.items()}


def diary(values: dict[int, float], **other: dict[int, float]) -> list[Day]:
    """Days relative to D0 with average pain and, optionally, other measures."""
    offsets = sorted(set(values) | {o for measure in other.values() for o in measure})
    return [
        Day(day(o), pain_average=values.get(o), **{m: series.get(o) for m, series in other.items()}) for o in offsets
    ]


# --- baseline ---------------------------------------------------------------------------------------------------


def test_baseline_over_seven_days_has_mean_and_sample_sd() -> None:
    # Window: D0−7 … D0−1. Values 6,7,6,5,6,7,5: sum 42, mean 6. Deviations 0,1,0,−1,0,1,−1: squares sum to 4,
    # sample variance 4/6, SD √(2/3). The day before the window (10) and the session day (10) do not count.
    by_date = pains({-8: 10, -7: 6, -6: 7, -5: 6, -4: 5, -3: 6, -2: 7, -1: 5, 0: 10})

    found = baseline(by_date, D0)

    assert (found.start, found.end, found.days, found.mean) == (day(-7), day(-1), 7, 6.0)
    assert found.sd == pytest.approx(sqrt(2 / 3))
    assert found.sufficient


def test_baseline_with_exactly_four_days_is_sufficient() -> None:
    # 4, 6, 8, 6: mean 6; deviations −2, 0, 2, 0: squares 8, sample variance 8/3.
    found = baseline(pains({-7: 4, -5: 6, -3: 8, -1: 6}), D0)

    assert (found.days, found.mean) == (4, 6.0)
    assert found.sd == pytest.approx(sqrt(8 / 3))


def test_baseline_with_three_days_is_insufficient_and_says_how_many_it_found() -> None:
    found = baseline(pains({-6: 5, -4: 6, -2: 7, 0: 2}), D0)

    assert (found.days, found.mean, found.sd, found.sufficient) == (3, None, None, False)


# --- change, categories and the two-point criterion -------------------------------------------------------------


def test_daily_change_and_percent_change_against_baseline() -> None:
    # Baseline 6. Day 0: 3 → −3 points, −50 %. Day 1: 9 → +3, +50 %. Day 2: no entry → nothing.
    days = response_days(pains({0: 3, 1: 9}), D0, day(2), 6.0)

    assert [(d.day, d.pain, d.change, d.percent_change) for d in days] == [
        (day(0), 3, -3.0, -50.0),
        (day(1), 9, 3.0, 50.0),
        (day(2), None, None, None),
    ]


def test_rolling_mean_needs_four_days_since_the_first_session_and_ignores_baseline_days() -> None:
    # Baseline days at 6 must not enter the rolling mean. Days 0–3: 6, 4, 3, 3.
    # Day 2 has three post-session days: no rolling mean. Day 3: (6+4+3+3)/4 = 4 → −2 points, −33.3 %.
    # Day 4 (no entry): still four days in 0–4 → 4. Day 7: days 1–7 hold 4, 3, 3, 2, 2 → 14/5 = 2.8 → −3.2/6 = −53.3 %.
    # Day 10: days 4–10 hold only 2, 2 (days 5, 6) → None.
    by_date = pains({-3: 6, -2: 6, -1: 6, 0: 6, 1: 4, 2: 3, 3: 3, 5: 2, 6: 2})

    days = {d.day: d for d in response_days(by_date, D0, day(10), 6.0)}

    assert days[day(2)].rolling is None
    assert (days[day(3)].rolling, days[day(3)].rolling_change) == (4.0, -2.0)
    assert days[day(3)].rolling_percent_change == pytest.approx(-100 / 3)
    assert days[day(4)].rolling == 4.0
    assert days[day(7)].rolling == pytest.approx(2.8)
    assert days[day(7)].rolling_percent_change == pytest.approx(-160 / 3)
    assert days[day(7)].category is Category.SUBSTANTIAL
    assert days[day(10)].rolling is None
    assert days[day(10)].category is None


@pytest.mark.parametrize(
    ("pct", "expected"),
    [
        (-100.0, Category.SUBSTANTIAL),
        (-50.0, Category.SUBSTANTIAL),
        (-49.99, Category.MODERATE),
        (-30.0, Category.MODERATE),
        (-29.99, Category.MINIMAL),
        (-10.0, Category.MINIMAL),
        (-9.99, Category.NONE),
        (0.0, Category.NONE),
        (25.0, Category.NONE),
        (None, None),
    ],
)
def test_immpact_categories_at_their_boundaries(pct: float | None, expected: Category | None) -> None:
    assert category(pct) is expected


def test_an_exact_thirty_percent_survives_float_rounding() -> None:
    # Baseline 4,4,4,4,4,5,5 = 30/7; rolling 3. Reduction (30/7 − 3)/(30/7) = 9/30 = 30 % exactly, but in binary
    # it comes out as 29.999999999999996 %: still MODERATE, not MINIMAL.
    base = baseline(pains({-7: 4, -6: 4, -5: 4, -4: 4, -3: 4, -2: 5, -1: 5}), D0).mean
    pct = percent_change(3.0, base)

    assert pct is not None
    assert pct > -30.0
    assert category(pct) is Category.MODERATE


@pytest.mark.parametrize(
    ("value", "base", "expected"),
    [(4.0, 6.0, True), (4.1, 6.0, False), (0.0, 2.0, True), (3.0, 2.0, False), (None, 6.0, None), (4.0, None, None)],
)
def test_two_point_criterion(value: float | None, base: float | None, expected: bool | None) -> None:
    assert two_point(value, base) is expected


def test_a_zero_baseline_gives_no_percentages_and_no_crash() -> None:
    # No pain before treatment: changes in points still make sense, percentages do not.
    outcome = course_outcome(diary(dict.fromkeys(range(-7, 8), 0)), [D0], [], until=day(7), rule=ROLLING30)

    assert outcome.baseline is not None
    assert outcome.baseline.mean == 0.0
    last = outcome.days[-1]
    assert (last.change, last.percent_change, last.rolling, last.rolling_percent_change) == (0.0, None, 0.0, None)
    assert (last.category, last.two_point) == (None, False)
    assert outcome.onset is None
    assert outcome.relief is not None
    assert outcome.relief.status is ReliefStatus.NO_RELIEF


# --- onset, relief and return of pain ---------------------------------------------------------------------------


def two_session_course() -> list[Day]:
    """Baseline 6 (seven days at 6). Second session on day 14. Days 0–13: 3; days 14–20: 2; days 21–30: 8."""
    values = dict.fromkeys(range(-7, 0), 6.0)
    values |= dict.fromkeys(range(14), 3.0) | dict.fromkeys(range(14, 21), 2.0) | dict.fromkeys(range(21, 31), 8.0)
    return diary(values)


def test_onset_is_the_first_day_the_rolling_mean_is_thirty_percent_down() -> None:
    # Days 0–3 at 3: first rolling mean on day 3 (four days) = 3, −50 %: onset on day 3, three days in.
    outcome = course_outcome(two_session_course(), [D0, day(14)], [], until=day(30), rule=ROLLING30)

    assert outcome.onset is not None
    assert (outcome.onset.day, outcome.onset.days) == (day(3), 3)


def test_onset_waits_for_the_rolling_mean_not_a_single_good_day() -> None:
    # Baseline 10. Days 0–3: 10, 10, 10, 2 → rolling on day 3 = 32/4 = 8 (−20 %). Day 4: 2 → 34/5 = 6.8 (−32 %).
    values = dict.fromkeys(range(-7, 3), 10.0) | {3: 2.0, 4: 2.0}
    outcome = course_outcome(diary(values), [D0], [], until=day(4), rule=ROLLING30)

    assert outcome.onset is not None
    assert outcome.onset.days == 4


def test_return_of_pain_by_rolling30() -> None:
    # 30 % below baseline 6 is 4.2. Rolling means from the last session (day 14) on:
    #   day 14: 3×6 + 2 = 20/7 = 2.86 (holds: relief starts on day 14) … day 20: 2
    #   day 21: 2×6 + 8 = 20/7 = 2.86; day 22: 2×5 + 8×2 = 26/7 = 3.71 (still holds)
    #   day 23: 2×4 + 8×3 = 32/7 = 4.57; day 24: 38/7 = 5.43; day 25: 44/7 = 6.29 → three days in a row above 4.2:
    # pain returned on day 23, nine days after the last session; relief held days 14–22 (nine days).
    outcome = course_outcome(two_session_course(), [D0, day(14)], [], until=day(30), rule=ROLLING30)

    found = outcome.relief
    assert found is not None
    assert (found.rule.id, found.status, found.last_session) == ("rolling30.v1", ReliefStatus.RETURNED, day(14))
    assert (found.relief_start, found.returned_on) == (day(14), day(23))
    assert (found.time_to_return_days, found.duration_days) == (9, 9)


def test_return_of_pain_by_baseline_minus_one() -> None:
    # Pain has returned when the rolling mean is ≥ 6 − 1 = 5. Day 23: 4.57 (relief holds); day 24: 5.43;
    # day 25: 6.29; day 26: 2 + 8×6 = 50/7 = 7.14 → returned on day 24, ten days after the last session.
    outcome = course_outcome(two_session_course(), [D0, day(14)], [], until=day(30), rule=MINUS_ONE)

    found = outcome.relief
    assert found is not None
    assert found.rule.id == "baseline_minus_one.v1"
    assert (found.status, found.returned_on, found.time_to_return_days, found.duration_days) == (
        ReliefStatus.RETURNED,
        day(24),
        10,
        10,
    )


def test_relief_is_ongoing_while_the_run_is_shorter_than_three_days() -> None:
    # Cut the same course at day 24: days 23 and 24 are only two days above 4.2. Relief started on day 14 and
    # has held, so far, through day 24: eleven days.
    outcome = course_outcome(two_session_course(), [D0, day(14)], [], until=day(24), rule=ROLLING30)

    found = outcome.relief
    assert found is not None
    assert (found.status, found.returned_on, found.time_to_return_days, found.duration_days) == (
        ReliefStatus.ONGOING,
        None,
        None,
        11,
    )


def test_a_day_without_a_rolling_mean_breaks_the_run() -> None:
    # Baseline 6 (4.2 is 30 % down); last session day 0. Days 0–6 at 2, days 7, 8 at 8, then a gap, days 15–18 at 8.
    #   days 3–9: rolling 2 … (day 9: 2×4 + 8×2 = 24/6 = 4.0) → relief from day 3 (the first rolling mean);
    #   day 10: (2×3 + 16)/5 = 4.4 and day 11: (2×2 + 16)/4 = 5 → two days not holding;
    #   days 12–17: fewer than 4 days in the window → no rolling mean, which ends that run;
    #   days 18 and 19: (8×4)/4 = 8 → a new run of two. No three in a row: relief is still ongoing.
    # (Were missing days skipped instead, days 10, 11 and 18 would make pain return on day 10.)
    values = (
        dict.fromkeys(range(-7, 0), 6.0) | dict.fromkeys(range(7), 2.0) | dict.fromkeys((7, 8, 15, 16, 17, 18), 8.0)
    )
    outcome = course_outcome(diary(values), [D0], [], until=day(19), rule=ROLLING30)

    found = outcome.relief
    assert found is not None
    assert (found.status, found.relief_start, found.returned_on) == (ReliefStatus.ONGOING, day(3), None)
    assert [d.rolling for d in outcome.days[10:13]] == [4.4, 5.0, None]


def test_no_relief_after_the_last_session() -> None:
    # Baseline 6; pain stays at 6: the rolling mean never drops 30 %.
    values = dict.fromkeys(range(-7, 10), 6.0)
    outcome = course_outcome(diary(values), [D0], [], until=day(9), rule=ROLLING30)

    assert outcome.relief is not None
    assert (outcome.relief.status, outcome.relief.duration_days, outcome.relief.returned_on) == (
        ReliefStatus.NO_RELIEF,
        0,
        None,
    )
    assert outcome.latest is not None
    assert outcome.latest.category is Category.NONE


def test_relief_is_judged_from_the_last_session_only() -> None:
    # Baseline 6. Days 0–6 at 2, then 6 from day 7 on; second session on day 10.
    # Day 9 (days 3–9: 2×4 + 6×3 = 26/7 = 3.71) still held relief from the first session, but from day 10 on
    # it never does: day 10 (4–10: 2×3 + 6×4 = 30/7 = 4.29 > 4.2), day 11: 34/7, … So after the last session:
    # no relief, none lasting, and no return to report.
    values = dict.fromkeys(range(-7, 0), 6.0) | dict.fromkeys(range(7), 2.0) | dict.fromkeys(range(7, 16), 6.0)
    outcome = course_outcome(diary(values), [D0, day(10)], [], until=day(15), rule=ROLLING30)

    assert outcome.days[9].category is Category.MODERATE
    found = outcome.relief
    assert found is not None
    assert (found.last_session, found.status, found.relief_start, found.duration_days) == (
        day(10),
        ReliefStatus.NO_RELIEF,
        None,
        0,
    )


def test_rules_are_looked_up_by_name_and_version() -> None:
    assert rule_named("rolling30.v1") is ROLLING30
    with pytest.raises(BadInput) as refused:
        rule_named("rolling30.v2")
    assert refused.value.field == "return_rule"


# --- area under the curve ---------------------------------------------------------------------------------------


def test_area_under_the_curve_between_and_after_sessions() -> None:
    # Interval 1: days 0–13, fourteen days at 3 → 13 one-day trapezoids of 3 = 39 point-days, span 13, mean 3.
    # Interval 2 (after the last session): days 14–30: 6 trapezoids at 2 (12), day 20→21 (2+8)/2 = 5, 9 at 8 (72):
    # 89 point-days over 16 days, mean 89/16 = 5.5625.
    outcome = course_outcome(two_session_course(), [D0, day(14)], [], until=day(30), rule=ROLLING30)

    first, last = outcome.areas
    assert (first.start, first.end, first.after_last_session) == (day(0), day(13), False)
    assert (first.days_with_data, first.auc, first.span_days, first.mean) == (14, 39.0, 13, 3.0)
    assert (last.start, last.end, last.after_last_session) == (day(14), day(30), True)
    assert (last.days_with_data, last.auc, last.span_days, last.mean) == (17, 89.0, 16, 5.5625)


def test_area_bridges_gaps_with_a_straight_line() -> None:
    # Day 0: 2, day 3: 8 → 3 × (2+8)/2 = 15; day 4: 4 → + (8+4)/2 = 6. 21 point-days over 4 days: mean 5.25.
    area = pain_area(pains({0: 2, 3: 8, 4: 4, 9: 9}), day(0), day(5), after_last_session=True)

    assert (area.days_with_data, area.auc, area.span_days, area.mean) == (3, 21.0, 4, 5.25)


def test_area_needs_two_days_with_data() -> None:
    area = pain_area(pains({2: 5}), day(0), day(5), after_last_session=False)

    assert (area.days_with_data, area.auc, area.span_days, area.mean) == (1, None, 0, None)


# --- sleep and mood trends --------------------------------------------------------------------------------------


def test_sleep_and_mood_baseline_against_the_last_seven_days() -> None:
    # Sleep hours: baseline days −7…−4 at 5, 6, 5, 6 → 5.5; last 7 days (days 4–10) 7, 8, 7, 8 → 7.5; +2 hours.
    # Mood: baseline only three days → no baseline, no change; recent 6, 6, 6, 9 → 6.75.
    sleep = {-7: 5, -6: 6, -5: 5, -4: 6, 4: 7, 6: 8, 8: 7, 10: 8.0}
    mood = {-3: 3, -2: 4, -1: 5, 7: 6, 8: 6, 9: 6, 10: 9.0}
    outcome = course_outcome(diary({}, sleep_hours=sleep, mood=mood), [D0], [], until=day(10), rule=ROLLING30)

    trends = {t.measure: t for t in outcome.trends}
    hours = trends["sleep_hours"]
    assert (hours.baseline, hours.baseline_days, hours.recent, hours.recent_days, hours.change) == (5.5, 4, 7.5, 4, 2.0)
    feeling = trends["mood"]
    assert (feeling.baseline, feeling.baseline_days, feeling.recent, feeling.change) == (None, 3, 6.75, None)


# --- edges ------------------------------------------------------------------------------------------------------


def test_a_course_without_sessions_has_no_outcome() -> None:
    outcome = course_outcome(diary({0: 5}), [], [], until=day(5), rule=ROLLING30)

    assert (outcome.baseline, outcome.first_session, outcome.started) == (None, None, False)
    assert (outcome.days, outcome.areas, outcome.trends, outcome.relief) == ([], [], [], None)


def test_a_course_with_only_future_sessions_has_a_baseline_so_far_and_no_response() -> None:
    # First session planned for day 3, today is day 0: the window is −4…2; days −4, −3, −1 have data → 3 days.
    outcome = course_outcome(diary({-5: 9, -4: 6, -3: 7, -1: 8}), [], [day(3)], until=day(0), rule=ROLLING30)

    assert outcome.first_session == day(3)
    assert not outcome.started
    assert outcome.baseline is not None
    assert (outcome.baseline.start, outcome.baseline.days, outcome.baseline.sufficient) == (day(-4), 3, False)
    assert (outcome.days, outcome.onset, outcome.relief, outcome.areas) == ([], None, None, [])


def test_an_insufficient_baseline_still_reports_pain_but_no_response() -> None:
    outcome = course_outcome(diary({-2: 6, -1: 6, 0: 3, 1: 3, 2: 3, 3: 3}), [D0], [], until=day(3), rule=ROLLING30)

    last = outcome.days[-1]
    assert (last.pain, last.rolling, last.change, last.category, last.two_point) == (3, 3.0, None, None, None)
    assert (outcome.onset, outcome.relief) == (None, None)


def test_two_sessions_on_one_day_are_one_session_day() -> None:
    outcome = course_outcome(two_session_course(), [D0, D0, day(14)], [], until=day(30), rule=ROLLING30)

    assert outcome.sessions == (D0, day(14))
    assert len(outcome.areas) == 2


def test_areas_stop_where_the_course_window_ends() -> None:
    # Sessions on days 0 and 20, but the next course began on day 11 (until = day 10): the first interval is cut at
    # day 10 (days 0–10 at 3: 10 trapezoids of 3 = 30) and the second, starting after it, is left out.
    areas = pain_areas(pains(dict.fromkeys(range(15), 3.0)), [D0, day(20)], day(10))

    assert [(a.start, a.end, a.auc, a.span_days, a.after_last_session) for a in areas] == [
        (day(0), day(10), 30.0, 10, False)
    ]
