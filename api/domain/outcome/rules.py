"""Named, versioned rules for when relief after the last session has ended (time to return of pain).

No study defines return of pain uniformly (research/domain.md §2.3), so every value computed from a rule carries
the rule's id. A rule, once published, never changes: a different definition is a new version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from api.domain.errors import BadInput
from api.domain.outcome.change import percent_change, reaches

DEFAULT_RULE = "rolling30.v1"


@dataclass(frozen=True)
class ReturnRule:
    name: str
    version: int
    description: str
    # Pain has returned on the first of this many consecutive days on which relief no longer holds.
    consecutive_days: int
    # Whether relief holds for a rolling 7-day mean against the baseline; None when it cannot be judged.
    holds: Callable[[float, float], bool | None]

    @property
    def id(self) -> str:
        return f"{self.name}.v{self.version}"


def _thirty_percent(rolling: float, baseline: float) -> bool | None:
    pct = percent_change(rolling, baseline)
    return None if pct is None else reaches(-pct, 30.0)


def _below_baseline_minus_one(rolling: float, baseline: float) -> bool | None:
    return not reaches(rolling, baseline - 1.0)


RULES: dict[str, ReturnRule] = {
    rule.id: rule
    for rule in (
        ReturnRule(
            "rolling30",
            1,
            "Relief holds while the rolling 7-day mean is at least 30 % below baseline; pain has returned on the "
            "first of 3 consecutive days on which it is not.",
            3,
            _thirty_percent,
        ),
        ReturnRule(
            "baseline_minus_one",
            1,
            "Relief holds while the rolling 7-day mean is more than 1 point below baseline; pain has returned on "
            "the first of 3 consecutive days on which it is at or above baseline minus 1 point.",
            3,
            _below_baseline_minus_one,
        ),
    )
}


def rule_named(name: str, field: str = "return_rule") -> ReturnRule:
    rule = RULES.get(name)
    if rule is None:
        raise BadInput(field, f"unknown rule; known rules: {', '.join(sorted(RULES))}")
    return rule
