"""Each alert rule fires at its threshold and not below; a clinic's override moves the threshold; a disabled rule
stays silent; critical rules can be neither disabled nor tuned; overrides are validated."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from api.domain.alert.models import ClinicAlertSettings, Severity
from api.domain.alert.rules import RULES, Thresholds, rebound, validate_overrides
from api.domain.errors import BadInput
from api.domain.questionnaire import instruments
from api.domain.services import Services
from tests.alert_support import (
    EST,
    Ward,
    alerts_of,
    completed_session,
    effects,
    log,
    override,
    respond,
    rules_raised,
    ward,
)
from tests.factories import Factory


@pytest_asyncio.fixture
async def w(factory: Factory) -> Ward:
    return await ward(factory)


# --- red_flag_symptom (CRITICAL) -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["CHEST_PAIN", "BREATHING_DIFFICULTY", "LOSS_OF_CONSCIOUSNESS"])
async def test_a_red_flag_symptom_raises_a_critical_alert(factory: Factory, w: Ward, now: datetime, code: str) -> None:
    entry = await log(factory, w.alice, now - timedelta(hours=1), side_effects=effects(**{code: 1}))
    [alert] = await alerts_of(w.alice)
    assert (alert.rule_id, alert.rule_version, alert.severity) == ("red_flag_symptom", 1, Severity.CRITICAL)
    assert alert.episode == "patient"
    # What the rule saw is kept with the trigger: an edit of the entry is judged against it.
    assert alert.triggers == [{"type": "DiaryEntry", "id": str(entry.id), "at": now.isoformat(), "seen": {code: 1}}]
    assert alert.details == {"symptoms": [code], "min_severity": 1, "settings_version": 0}
    assert alert.clinic_id == w.clinic.id


async def test_a_red_flag_at_severity_zero_or_another_symptom_raises_nothing(
    factory: Factory, w: Ward, now: datetime
) -> None:
    await log(factory, w.alice, now - timedelta(hours=2), side_effects=effects(CHEST_PAIN=0))
    await log(factory, w.alice, now - timedelta(hours=1), side_effects=effects(NAUSEA=3, HEADACHE=3))
    assert await alerts_of(w.alice) == []


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ({"red_flag_symptom": {"min_severity": 3}}, "red_flag_symptom.min_severity is fixed at 1"),
        ({"red_flag_symptom": {"min_severity": 0}}, "red_flag_symptom.min_severity is fixed at 1"),
        ({"phq9_item9": {"min_answer": 3}}, "phq9_item9.min_answer is fixed at 1"),
        ({"phq9_item9": {"min_answer": 2, "enabled": True}}, "phq9_item9.min_answer is fixed at 1"),
    ],
)
async def test_a_clinic_cannot_raise_a_critical_threshold(
    services: Services, w: Ward, now: datetime, *, thresholds: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadInput) as refused:
        await override(services, w.admin, now, **thresholds)
    assert refused.value.field == "thresholds"
    assert message in refused.value.message
    assert "a critical safety rule's threshold cannot be changed" in refused.value.message
    assert (await services.alerts.settings(w.admin.actor)).version == 0


async def test_a_critical_threshold_stored_before_it_was_fixed_is_ignored(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    stored = {"red_flag_symptom": {"min_severity": 3}, "phq9_item9": {"min_answer": 3}}
    await ClinicAlertSettings.create(clinic_id=w.clinic.id, thresholds=stored, version=4, updated_at=now)
    await log(factory, w.alice, now - timedelta(hours=1), side_effects=effects(CHEST_PAIN=1))
    [raised] = await respond(services, w.alice, "phq9", score=6, answers={"phq9_9": 1}, now=now)
    assert sorted(a.rule_id for a in await alerts_of(w.alice)) == ["phq9_item9", "red_flag_symptom"]
    assert raised.details["min_answer"] == 1
    settings = await services.alerts.settings(w.admin.actor)
    assert {s.rule.id: dict(s.params) for s in settings.rules if not s.rule.may_tune} == {
        "red_flag_symptom": {"min_severity": 1},
        "phq9_item9": {"min_answer": 1},
    }


# --- severe_vomiting (HIGH) ----------------------------------------------------------------------------------


async def test_vomiting_raises_from_severity_three_only(factory: Factory, w: Ward, now: datetime) -> None:
    await log(factory, w.alice, now - timedelta(hours=2), side_effects=effects(VOMITING=2))
    assert await alerts_of(w.alice) == []
    await log(factory, w.alice, now - timedelta(hours=1), side_effects=effects(VOMITING=3))
    [alert] = await alerts_of(w.alice)
    assert (alert.rule_id, alert.severity) == ("severe_vomiting", Severity.HIGH)


async def test_a_clinic_can_lower_the_vomiting_threshold_or_disable_the_rule(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    await override(services, w.admin, now, severe_vomiting={"min_severity": 2})
    await log(factory, w.alice, now - timedelta(hours=2), side_effects=effects(VOMITING=2))
    assert await rules_raised(w.alice) == ["severe_vomiting"]
    await override(services, w.admin, now, severe_vomiting={"enabled": False})
    await log(factory, w.bob, now - timedelta(hours=1), side_effects=effects(VOMITING=3))
    assert await alerts_of(w.bob) == []


# --- persistent_dissociation (HIGH) -------------------------------------------------------------------------


async def test_dissociation_a_day_after_the_infusion_raises_for_that_session(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    ended = now - timedelta(days=2)
    session = await completed_session(services, w.clinician, w.alice, ended_at=ended, now=now)
    await log(factory, w.alice, ended + timedelta(hours=23, minutes=59), side_effects=effects(DISSOCIATION=2))
    assert await alerts_of(w.alice) == []
    await log(factory, w.alice, ended + timedelta(hours=24), side_effects=effects(HALLUCINATIONS=1, DISSOCIATION=1))
    [alert] = await alerts_of(w.alice)
    assert (alert.rule_id, alert.severity, alert.episode) == (
        "persistent_dissociation",
        Severity.HIGH,
        f"session:{session.id}",
    )
    assert alert.details["symptoms"] == ["DISSOCIATION", "HALLUCINATIONS"]
    assert alert.details["hours_after_session"] == 24.0


async def test_dissociation_without_a_completed_session_raises_nothing(
    factory: Factory, w: Ward, now: datetime
) -> None:
    # No completed session at all: nothing to be "after".
    await log(factory, w.alice, now - timedelta(hours=1), side_effects=effects(HALLUCINATIONS=3))
    assert await alerts_of(w.alice) == []


async def test_a_clinic_can_shorten_the_dissociation_window_or_disable_it(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    ended = now - timedelta(days=2)
    await completed_session(services, w.clinician, w.alice, ended_at=ended, now=now)
    await completed_session(services, w.clinician, w.bob, ended_at=ended, now=now)
    await override(services, w.admin, now, persistent_dissociation={"hours": 12, "min_severity": 2})
    await log(factory, w.alice, ended + timedelta(hours=12), side_effects=effects(DISSOCIATION=1))
    assert await alerts_of(w.alice) == []
    await log(factory, w.alice, ended + timedelta(hours=13), side_effects=effects(DISSOCIATION=2))
    assert await rules_raised(w.alice) == ["persistent_dissociation"]
    await override(services, w.admin, now, persistent_dissociation={"enabled": False})
    await log(factory, w.bob, ended + timedelta(hours=30), side_effects=effects(DISSOCIATION=3))
    assert await alerts_of(w.bob) == []


# --- questionnaire rules ------------------------------------------------------------------------------------


async def test_phq9_item_nine_answered_several_days_raises_a_critical_alert(
    services: Services, w: Ward, now: datetime
) -> None:
    assert await respond(services, w.alice, "phq9", score=5, answers={"phq9_9": 0}, now=now) == []
    [raised] = await respond(services, w.alice, "phq9", score=6, answers={"phq9_9": 1}, now=now)
    assert (raised.rule_id, raised.severity, raised.episode) == ("phq9_item9", Severity.CRITICAL, "patient")
    assert raised.details == {
        "instrument": "phq9",
        "item": "phq9_9",
        "answer": 1,
        "min_answer": 1,
        "settings_version": 0,
    }
    assert raised.triggers[0]["type"] == "QuestionnaireResponse"


@pytest.fixture
def spanish_phq9(monkeypatch: pytest.MonkeyPatch) -> None:
    """A translated PHQ-9 under its own id, installed beside the built-in definitions."""
    built_in = instruments.Registry.load()
    phq9 = built_in.get("phq9")
    spanish = replace(phq9, id="phq9_es", title="PHQ-9 (español)")
    monkeypatch.setattr(instruments, "_installed", instruments.Registry([phq9, spanish, built_in.get("gad7")]))


@pytest.mark.usefixtures("spanish_phq9")
async def test_the_self_harm_flag_of_any_instrument_raises_the_item_nine_alert(
    services: Services, w: Ward, now: datetime
) -> None:
    """The patient was shown the crisis message (derived self_harm); the clinic must hear of it too."""
    flagged = {"self_harm": True}
    assert await respond(services, w.alice, "phq9_es", score=5, answers={"phq9_9": 0}, now=now) == []
    [raised] = await respond(services, w.alice, "phq9_es", score=7, answers={"phq9_9": 2}, derived=flagged, now=now)
    assert (raised.rule_id, raised.severity) == ("phq9_item9", Severity.CRITICAL)
    assert raised.details == {
        "instrument": "phq9_es",
        "item": "phq9_9",
        "answer": 2,
        "flag": "self_harm",
        "settings_version": 0,
    }
    # A definition no longer installed still has its stored flag: the alert names the instrument, not the item.
    [other] = await respond(services, w.bob, "phq9_gone", score=None, derived=flagged, now=now)
    assert (other.rule_id, other.details["instrument"], other.details["item"]) == ("phq9_item9", "phq9_gone", None)
    assert await respond(services, w.bob, "phq9_gone", score=None, derived={"self_harm": False}, now=now) == []


async def test_a_clinic_cannot_switch_item_nine_off(services: Services, w: Ward, now: datetime) -> None:
    with pytest.raises(BadInput, match="critical safety rule cannot be disabled"):
        await override(services, w.admin, now, phq9_item9={"enabled": False})
    assert len(await respond(services, w.alice, "phq9", score=6, answers={"phq9_9": 1}, now=now)) == 1


@pytest.mark.parametrize(
    ("instrument", "rule", "threshold"),
    [("phq9", "phq9_severe", 20), ("gad7", "gad7_severe", 15)],
)
async def test_a_severe_score_raises_a_high_alert_from_its_threshold(
    services: Services, w: Ward, now: datetime, *, instrument: str, rule: str, threshold: int
) -> None:
    assert await respond(services, w.alice, instrument, score=threshold - 1, now=now) == []
    [raised] = await respond(services, w.alice, instrument, score=threshold, now=now)
    assert (raised.rule_id, raised.severity) == (rule, Severity.HIGH)
    assert raised.details == {
        "instrument": instrument,
        "score": threshold,
        "min_score": threshold,
        "settings_version": 0,
    }


@pytest.mark.parametrize(("instrument", "rule"), [("phq9", "phq9_severe"), ("gad7", "gad7_severe")])
async def test_a_clinic_can_move_or_disable_the_score_thresholds(
    services: Services, w: Ward, now: datetime, instrument: str, rule: str
) -> None:
    await override(services, w.admin, now, **{rule: {"min_score": 10}})
    assert await respond(services, w.alice, instrument, score=9, now=now) == []
    assert len(await respond(services, w.alice, instrument, score=10, now=now)) == 1
    await override(services, w.admin, now, **{rule: {"enabled": False}})
    assert await respond(services, w.bob, instrument, score=21, now=now) == []


async def test_a_gad7_score_does_not_read_as_phq9_and_other_instruments_raise_nothing(
    services: Services, w: Ward, now: datetime
) -> None:
    # GAD-7 has no item 9; a PGIC of 7 is a good outcome, not a severe score.
    assert await respond(services, w.alice, "gad7", score=14, answers={"phq9_9": 3}, now=now) == []
    assert await respond(services, w.alice, "pgic", score=27, answers={"pgic": 7}, now=now) == []


# --- loss_of_response (MEDIUM) ------------------------------------------------------------------------------


def days_from(start: date, values: list[float]) -> dict[date, float]:
    return {start + timedelta(days=i): v for i, v in enumerate(values)}


D0 = date(2026, 11, 10)
DEFAULTS = Thresholds().of("loss_of_response")


@pytest.mark.parametrize(
    ("values", "fires", "why"),
    [
        ([5, 7, 7, 7], True, "nadir 5: 7 ≥ 5 + 2"),
        ([5, 6, 6, 6], False, "nadir 5: 6 < 7 and 6 < 6.5"),
        ([5, 6.5, 6.5, 6.5], True, "nadir 5: 6.5 ≥ 5 × 1.3"),
        ([2, 3, 3, 3], True, "nadir 2: 3 ≥ 2.6, the percent criterion"),
        ([3, 3.9, 3.9, 3.9], True, "nadir 3: 3.9 ≥ 3.9 exactly (binary floating point aside)"),
        ([3, 3.5, 3.5, 3.5], False, "nadir 3: 3.5 < 3.9 and < 5"),
        ([0, 1, 1, 1], False, "nadir 0: percent does not apply and 1 < 2"),
        ([0, 2, 2, 2], True, "nadir 0: 2 ≥ 0 + 2"),
        ([5, 7, 7], False, "only two days above the nadir"),
        ([5, 7, 7, 7, 4], False, "the latest day is the new low"),
        ([7, 5, 7, 7, 7], True, "the nadir may come after the first day"),
    ],
)
def test_rebound_compares_the_last_three_days_with_the_lowest_day(values: list[float], fires: bool, why: str) -> None:
    found = rebound(days_from(D0, values), DEFAULTS)
    assert (found is not None) is fires, why


def test_rebound_needs_consecutive_days_ending_on_the_newest_day() -> None:
    gap = {D0: 5.0, D0 + timedelta(days=1): 7.0, D0 + timedelta(days=2): 7.0, D0 + timedelta(days=4): 7.0}
    assert rebound(gap, DEFAULTS) is None
    found = rebound(days_from(D0, [5, 7, 7, 7]), DEFAULTS)
    assert found == {
        "nadir": 5,
        "days": [{"date": f"2026-11-1{d}", "pain_average": 7} for d in (1, 2, 3)],
        "points": 2,
        "percent": 30,
    }


def test_rebound_follows_the_clinic_parameters() -> None:
    overrides: dict[str, dict[str, Any]] = {"loss_of_response": {"days": 2, "points": 3, "percent": 100}}
    setting = Thresholds(overrides).of("loss_of_response")
    assert rebound(days_from(D0, [5, 7.9, 7.9]), setting) is None  # < 8 and < 10
    assert rebound(days_from(D0, [5, 4, 8, 8]), setting) is not None  # nadir 4: 8 ≥ 4 × 2
    assert rebound(days_from(D0, [5, 8, 8]), setting) is not None  # 8 ≥ 5 + 3


async def test_loss_of_response_from_the_diary_after_a_session(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    ended = datetime(2026, 11, 16, 15, 0, tzinfo=EST)
    session = await completed_session(services, w.clinician, w.alice, ended_at=ended, now=now)
    # Before the session: a low day that must not count as the post-infusion low.
    await log(factory, w.alice, datetime(2026, 11, 15, 12, 0, tzinfo=EST), pain_average=1)
    # Local days 17–20 Nov (New York). The 17th averages (4 + 6) / 2 = 5, the low.
    await log(factory, w.alice, datetime(2026, 11, 17, 9, 0, tzinfo=EST), pain_average=4)
    await log(factory, w.alice, datetime(2026, 11, 17, 21, 0, tzinfo=EST), pain_average=6)
    await log(factory, w.alice, datetime(2026, 11, 18, 12, 0, tzinfo=EST), pain_average=7)
    # 23:30 in New York is already the 20th in UTC: the local day is what counts.
    await log(factory, w.alice, datetime(2026, 11, 19, 23, 30, tzinfo=EST), pain_average=7)
    assert await alerts_of(w.alice) == []
    last = await log(factory, w.alice, datetime(2026, 11, 20, 12, 0, tzinfo=EST), pain_average=7)
    [alert] = await alerts_of(w.alice)
    assert (alert.rule_id, alert.severity, alert.episode) == (
        "loss_of_response",
        Severity.MEDIUM,
        f"session:{session.id}",
    )
    assert alert.triggers[0]["id"] == str(last.id)
    assert alert.details["nadir"] == 5
    assert [d["date"] for d in alert.details["days"]] == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert alert.details["session_ended_at"] == "2026-11-16T20:00:00+00:00"


async def test_loss_of_response_from_a_diary_synced_out_of_order(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    """An offline phone sends the low day last: the pattern is complete when it arrives, though its day is not
    the newest."""
    ended = datetime(2026, 11, 16, 15, 0, tzinfo=EST)
    session = await completed_session(services, w.clinician, w.alice, ended_at=ended, now=now)
    for day in (18, 19, 20):
        await log(factory, w.alice, datetime(2026, 11, day, 12, 0, tzinfo=EST), pain_average=7)
    assert await alerts_of(w.alice) == []  # three days, none of them a low to rebound from
    low = await log(factory, w.alice, datetime(2026, 11, 17, 12, 0, tzinfo=EST), pain_average=5)
    [alert] = await alerts_of(w.alice)
    assert (alert.rule_id, alert.episode, alert.details["nadir"]) == ("loss_of_response", f"session:{session.id}", 5)
    assert [d["date"] for d in alert.details["days"]] == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert alert.triggers[0]["id"] == str(low.id)


async def test_a_late_entry_from_before_the_latest_session_judges_no_pain_rebound(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    """Pain after an earlier infusion, synced late, is not set against the days after the latest one: the low of
    the 11th and the highs after the 16th belong to different sessions."""
    await completed_session(services, w.clinician, w.alice, ended_at=datetime(2026, 11, 10, 15, 0, tzinfo=EST), now=now)
    await completed_session(services, w.clinician, w.alice, ended_at=datetime(2026, 11, 16, 15, 0, tzinfo=EST), now=now)
    for day in (17, 18, 19):
        await log(factory, w.alice, datetime(2026, 11, day, 12, 0, tzinfo=EST), pain_average=7)
    await log(factory, w.alice, datetime(2026, 11, 11, 12, 0, tzinfo=EST), pain_average=2)
    assert await alerts_of(w.alice) == []


async def test_loss_of_response_disabled_by_the_clinic_stays_silent(
    factory: Factory, services: Services, w: Ward, now: datetime
) -> None:
    await override(services, w.admin, now, loss_of_response={"enabled": False})
    ended = datetime(2026, 11, 16, 15, 0, tzinfo=EST)
    await completed_session(services, w.clinician, w.alice, ended_at=ended, now=now)
    for day, pain in zip((17, 18, 19, 20), (2, 8, 8, 8), strict=True):
        await log(factory, w.alice, datetime(2026, 11, day, 12, 0, tzinfo=EST), pain_average=pain)
    assert await alerts_of(w.alice) == []


# --- overrides ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "must be an object"),
        ({"no_such_rule": {}}, "unknown rule 'no_such_rule'"),
        ({"severe_vomiting": 3}, "severe_vomiting must be an object"),
        ({"severe_vomiting": {"threshold": 2}}, "severe_vomiting has no parameter 'threshold'"),
        ({"severe_vomiting": {"min_severity": 4}}, "severe_vomiting.min_severity must be a whole number from 1 to 3"),
        ({"severe_vomiting": {"min_severity": 0}}, "from 1 to 3"),
        ({"severe_vomiting": {"min_severity": 2.5}}, "must be a whole number"),
        ({"severe_vomiting": {"min_severity": "2"}}, "must be a whole number"),
        ({"severe_vomiting": {"min_severity": True}}, "must be a whole number"),
        ({"severe_vomiting": {"enabled": "no"}}, "severe_vomiting.enabled must be true or false"),
        ({"red_flag_symptom": {"enabled": False}}, "critical safety rule cannot be disabled"),
        ({"red_flag_symptom": {"min_severity": 2}}, "red_flag_symptom.min_severity is fixed at 1"),
        ({"phq9_item9": {"min_answer": 0}}, "phq9_item9.min_answer is fixed at 1"),
        ({"phq9_item9": {"min_answer": True}}, "phq9_item9.min_answer is fixed at 1"),
        ({"phq9_item9": {"min_answer": 1.0}}, "phq9_item9.min_answer is fixed at 1"),
        ({"missed_diary": {"days": 61}}, "missed_diary.days must be a whole number from 1 to 60"),
    ],
)
def test_overrides_are_refused_naming_what_is_wrong(raw: Any, message: str) -> None:
    with pytest.raises(BadInput) as refused:
        validate_overrides(raw)
    assert refused.value.field == "thresholds"
    assert message in refused.value.message


def test_a_critical_threshold_sent_back_at_its_fixed_value_is_accepted_and_not_stored() -> None:
    """An admin screen saving the parameters it displays sends the fixed ones too."""
    raw = {"phq9_item9": {"min_answer": 1}, "red_flag_symptom": {"min_severity": 1, "enabled": True}}
    assert validate_overrides(raw) == {"phq9_item9": {}, "red_flag_symptom": {"enabled": True}}


async def test_saving_the_displayed_critical_values_changes_nothing_they_run_with(
    services: Services, w: Ward, now: datetime
) -> None:
    await override(services, w.admin, now, phq9_item9={"min_answer": 1}, severe_vomiting={"min_severity": 2})
    settings = await services.alerts.settings(w.admin.actor)
    params = {s.rule.id: dict(s.params) for s in settings.rules}
    assert (settings.version, params["phq9_item9"], params["severe_vomiting"]) == (
        1,
        {"min_answer": 1},
        {"min_severity": 2},
    )


def test_valid_overrides_are_kept_and_unmentioned_values_take_the_defaults() -> None:
    raw: dict[str, dict[str, Any]] = {
        "loss_of_response": {"days": 4, "enabled": False},
        "red_flag_symptom": {"enabled": True},
    }
    assert validate_overrides(raw) == raw
    setting = Thresholds(raw, version=3).of("loss_of_response")
    assert (setting.enabled, dict(setting.params)) == (False, {"days": 4, "points": 2, "percent": 30})
    assert all(s.enabled for s in Thresholds(raw).all() if s.rule.id != "loss_of_response")


def test_every_rule_has_a_version_a_severity_and_defaults_inside_their_own_range() -> None:
    assert set(RULES) == {
        "phq9_item9",
        "red_flag_symptom",
        "persistent_dissociation",
        "severe_vomiting",
        "phq9_severe",
        "gad7_severe",
        "loss_of_response",
        "missed_diary",
    }
    for rule in RULES.values():
        assert rule.version >= 1
        assert all(p.low <= p.default <= p.high for p in rule.params.values()), rule.id
    assert {r.id for r in RULES.values() if not r.may_disable} == {"phq9_item9", "red_flag_symptom"}
    assert {r.id for r in RULES.values() if not r.may_tune} == {"phq9_item9", "red_flag_symptom"}
    assert {r.id for r in RULES.values() if r.once_per_episode} == {"loss_of_response"}
