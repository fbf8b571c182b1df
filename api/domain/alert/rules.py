"""The alert rules as data: id, code version, severity and parameters, with each clinic's overrides.

Defaults come from research/domain.md §3.3 and need clinical sign-off. A rule's `version` is the version of its
code (what it looks at and how it compares); a clinic changing a threshold does not change it: the clinic
settings version in force is stored in the alert's details instead, so an alert names both.

Critical rules are fixed: a clinic can neither switch them off nor move their thresholds (PHQ-9 item 9 ≥ 1, any
red-flag symptom at any severity), since either would silence a suicide-risk or medical-emergency alert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from api.domain.alert.models import Severity
from api.domain.diary.vocabulary import SideEffect
from api.domain.errors import BadInput

ENABLED = "enabled"
# Errors name the input field; the rule and parameter at fault are in the message (they are JSON keys, and the
# API's camelCase rewriting of field paths would misspell them).
FIELD = "thresholds"


class Source(StrEnum):
    """What makes a rule run: a diary entry arriving, a questionnaire response arriving, or the clock."""

    ENTRY = "ENTRY"
    RESPONSE = "RESPONSE"
    CLOCK = "CLOCK"


@dataclass(frozen=True)
class Param:
    default: int
    low: int
    high: int
    meaning: str


@dataclass(frozen=True)
class Rule:
    id: str
    version: int
    severity: Severity
    source: Source
    summary: str
    params: Mapping[str, Param]
    # A trend raises at most once per session: once a clinician resolved it, pain that stays as it was that session
    # is what was already judged, not news. The next session is a new episode. Not for reported symptoms: a new
    # report of dissociation days later, after a resolve, is news however the session went.
    once_per_episode: bool = False

    @property
    def may_disable(self) -> bool:
        # A silenced suicide-risk or medical-emergency alert fails the patient without anyone noticing.
        return self.severity is not Severity.CRITICAL

    @property
    def may_tune(self) -> bool:
        # Raising a critical threshold silences it just as surely as switching it off (item 9 "nearly every day"
        # only, chest pain only when severe).
        return self.severity is not Severity.CRITICAL


def _rule(
    rule_id: str, severity: Severity, source: Source, summary: str, *, once: bool = False, **params: Param
) -> Rule:
    return Rule(rule_id, 1, severity, source, summary, params, once)


SEVERITY = Param(1, 1, 3, "lowest side-effect severity that counts (1 mild, 2 moderate, 3 severe)")

RULES: Mapping[str, Rule] = {
    r.id: r
    for r in (
        _rule(
            "phq9_item9",
            Severity.CRITICAL,
            Source.RESPONSE,
            "PHQ-9 item 9 (thoughts of self-harm) answered at or above the threshold",
            min_answer=Param(1, 1, 3, "lowest answer code that raises (1 = several days)"),
        ),
        _rule(
            "red_flag_symptom",
            Severity.CRITICAL,
            Source.ENTRY,
            "chest pain, breathing difficulty or loss of consciousness reported",
            min_severity=SEVERITY,
        ),
        _rule(
            "persistent_dissociation",
            Severity.HIGH,
            Source.ENTRY,
            "hallucinations or dissociation still reported long after the last infusion ended",
            hours=Param(24, 1, 24 * 14, "hours after the end of the latest completed session"),
            min_severity=SEVERITY,
        ),
        _rule(
            "severe_vomiting",
            Severity.HIGH,
            Source.ENTRY,
            "vomiting reported at or above the severity threshold",
            min_severity=Param(3, 1, 3, SEVERITY.meaning),
        ),
        _rule(
            "phq9_severe",
            Severity.HIGH,
            Source.RESPONSE,
            "PHQ-9 total score in the severe range",
            min_score=Param(20, 1, 27, "lowest PHQ-9 total that raises"),
        ),
        _rule(
            "gad7_severe",
            Severity.HIGH,
            Source.RESPONSE,
            "GAD-7 total score in the severe range",
            min_score=Param(15, 1, 21, "lowest GAD-7 total that raises"),
        ),
        _rule(
            "loss_of_response",
            Severity.MEDIUM,
            Source.ENTRY,
            "daily average pain well above the post-infusion low on consecutive days",
            once=True,
            days=Param(3, 1, 14, "consecutive local days with data, each above the low"),
            points=Param(2, 1, 10, "NRS points above the post-infusion low"),
            percent=Param(30, 1, 100, "percent above the post-infusion low (only when the low is above 0)"),
        ),
        _rule(
            "missed_diary",
            Severity.LOW,
            Source.CLOCK,
            "no diary entry for several days during an active treatment course",
            days=Param(3, 1, 60, "days without a diary entry"),
        ),
    )
}

RED_FLAGS = frozenset({SideEffect.CHEST_PAIN, SideEffect.BREATHING_DIFFICULTY, SideEffect.LOSS_OF_CONSCIOUSNESS})
PSYCHOTOMIMETIC = frozenset({SideEffect.HALLUCINATIONS, SideEffect.DISSOCIATION})


@dataclass(frozen=True)
class Setting:
    """One rule as a clinic runs it."""

    rule: Rule
    enabled: bool
    params: Mapping[str, int]

    def __getitem__(self, name: str) -> int:
        return self.params[name]


@dataclass(frozen=True)
class Thresholds:
    """Every rule with the clinic's overrides applied; `version` is the clinic settings version (0: defaults)."""

    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    version: int = 0

    def of(self, rule_id: str) -> Setting:
        rule = RULES[rule_id]
        # A critical threshold stored before it was fixed is ignored rather than trusted.
        own = self.overrides.get(rule_id, {}) if rule.may_tune else {}
        params = {name: int(own.get(name, p.default)) for name, p in rule.params.items()}
        return Setting(rule, bool(own.get(ENABLED, True)), params)

    def all(self) -> list[Setting]:
        return [self.of(rule_id) for rule_id in RULES]


def validate_overrides(raw: object) -> dict[str, dict[str, Any]]:
    """A clinic's overrides as stored: known rules and parameters, integers in range, `enabled` a boolean."""
    if not isinstance(raw, Mapping):
        raise BadInput(FIELD, 'must be an object {"<rule id>": {"<parameter>": value, "enabled": true|false}}')
    clean: dict[str, dict[str, Any]] = {}
    for rule_id, values in raw.items():
        rule = RULES.get(rule_id) if isinstance(rule_id, str) else None
        if rule is None:
            raise BadInput(FIELD, f"unknown rule {rule_id!r}; known rules: {', '.join(RULES)}")
        if not isinstance(values, Mapping):
            raise BadInput(FIELD, f"{rule_id} must be an object of parameters")
        checked = {name: _checked(rule, name, value) for name, value in values.items()}
        clean[rule_id] = {name: value for name, value in checked.items() if value is not None}
    return clean


def _checked(rule: Rule, name: object, value: object) -> int | bool | None:
    """The value to store, or None for a fixed threshold sent back as it is (nothing to store)."""
    where = f"{rule.id}.{name}"
    if name == ENABLED:
        if not isinstance(value, bool):
            raise BadInput(FIELD, f"{where} must be true or false")
        if not value and not rule.may_disable:
            raise BadInput(FIELD, f"{where}: a critical safety rule cannot be disabled")
        return value
    param = rule.params.get(name) if isinstance(name, str) else None
    if param is None:
        known = ", ".join([*rule.params, ENABLED])
        raise BadInput(FIELD, f"{rule.id} has no parameter {name!r}; it has: {known}")
    if not rule.may_tune:
        # An admin screen saves the parameters it displays: the fixed value itself is no change.
        if not isinstance(value, bool) and isinstance(value, int) and value == param.default:
            return None
        raise BadInput(
            FIELD,
            f"{where} is fixed at {param.default}: a critical safety rule's threshold cannot be changed, "
            "since a higher one would silence it",
        )
    # bool is an int in Python, but `true` is not a threshold.
    if isinstance(value, bool) or not isinstance(value, int) or not param.low <= value <= param.high:
        raise BadInput(FIELD, f"{where} must be a whole number from {param.low} to {param.high}")
    return value


# Checks on the facts a rule reads; each returns the details to store, or None when the rule does not fire.


def side_effects_at(effects: Sequence[Mapping[str, Any]], codes: frozenset[str], min_severity: int) -> list[str]:
    """The codes among `codes` reported with at least `min_severity`, sorted."""
    return sorted({str(e["code"]) for e in effects if e.get("code") in codes and e.get("severity", 0) >= min_severity})


def severities(effects: Sequence[Mapping[str, Any]], codes: Sequence[str]) -> dict[str, int]:
    """The highest severity reported for each of `codes`: what a rule saw, so a later edit can be compared to it."""
    worst: dict[str, int] = {}
    for e in effects:
        if (code := str(e.get("code"))) in codes:
            worst[code] = max(worst.get(code, 0), int(e.get("severity", 0)))
    return worst


def answer_at_least(answers: Mapping[str, int], item: str, minimum: int) -> dict[str, Any] | None:
    answer = answers.get(item)
    if answer is None or answer < minimum:
        return None
    return {"item": item, "answer": answer, "min_answer": minimum}


def score_at_least(score: int | None, minimum: int) -> dict[str, Any] | None:
    if score is None or score < minimum:
        return None
    return {"score": score, "min_score": minimum}


def rebound(by_date: Mapping[date, float], setting: Setting) -> dict[str, Any] | None:
    """Loss of response: the last `days` local days with data (ending on the newest, whichever entry arrived last:
    an offline phone may sync an older day after newer ones) are consecutive, and each is at least `points` above
    the lowest day (the nadir) or `percent` above it. `by_date` holds only days since the session."""
    days = sorted(by_date)
    if len(days) <= setting["days"]:
        return None
    tail = days[-setting["days"] :]
    # Distinct sorted dates are consecutive exactly when they span one day fewer than their count.
    if tail[-1] - tail[0] != timedelta(days=len(tail) - 1):
        return None
    nadir = min(by_date.values())
    if not all(_above(by_date[d], nadir, setting) for d in tail):
        return None
    return {
        "nadir": nadir,
        "days": [{"date": d.isoformat(), "pain_average": by_date[d]} for d in tail],
        "points": setting["points"],
        "percent": setting["percent"],
    }


def _above(value: float, nadir: float, setting: Setting) -> bool:
    # Daily values are means of whole numbers; the tolerance keeps 3.9 ≥ 3 × 1.3 true in binary floating point.
    if value >= nadir + setting["points"] - 1e-9:
        return True
    return nadir > 0 and value * 100 >= nadir * (100 + setting["percent"]) - 1e-9
