"""Prompt rules as data: what a PromptPlan holds (design §4.1), and the default plan every clinic gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time, timedelta
from enum import StrEnum
from typing import Any

from api.domain.errors import BadInput

MAX_REMINDERS = 2


class RuleKind(StrEnum):
    AFTER_SESSION = "AFTER_SESSION"
    BEFORE_SESSION = "BEFORE_SESSION"
    DAILY = "DAILY"
    EVERY_N_DAYS = "EVERY_N_DAYS"
    WEEKLY = "WEEKLY"
    COURSE_END = "COURSE_END"


@dataclass(frozen=True)
class Rule:
    """One recurring prompt. `id` is stable across plan versions: it keys materialised prompts."""

    id: str
    kind: RuleKind
    instrument: str
    window: timedelta
    offset: timedelta = timedelta(0)
    # DAILY/EVERY_N_DAYS/WEEKLY: the local time; None means the patient's own diary time.
    at: time | None = None
    every_days: int = 1
    weekday: int | None = None  # WEEKLY: 0 = Monday
    reminders: tuple[timedelta, ...] = field(default_factory=tuple)
    quiet_hours: bool = True

    def __post_init__(self) -> None:
        if len(self.reminders) > MAX_REMINDERS:
            raise BadInput("reminders", f"at most {MAX_REMINDERS} reminders per rule")
        if self.window <= timedelta(0):
            raise BadInput("window", "must be positive")
        if self.every_days < 1:
            raise BadInput("every_days", "must be at least 1")
        if self.kind is RuleKind.WEEKLY and self.weekday is None:
            raise BadInput("weekday", "a weekly rule needs a weekday")

    @property
    def period_days(self) -> int:
        return 7 if self.kind is RuleKind.WEEKLY else self.every_days

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "instrument": self.instrument,
            "window_minutes": _minutes(self.window),
            "offset_minutes": _minutes(self.offset),
            "at": self.at.strftime("%H:%M") if self.at else None,
            "every_days": self.every_days,
            "weekday": self.weekday,
            "reminder_minutes": [_minutes(r) for r in self.reminders],
            "quiet_hours": self.quiet_hours,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Rule:
        at = data.get("at")
        return cls(
            id=data["id"],
            kind=RuleKind(data["kind"]),
            instrument=data["instrument"],
            window=timedelta(minutes=data["window_minutes"]),
            offset=timedelta(minutes=data.get("offset_minutes", 0)),
            at=time.fromisoformat(at) if at else None,
            every_days=data.get("every_days", 1),
            weekday=data.get("weekday"),
            reminders=tuple(timedelta(minutes=m) for m in data.get("reminder_minutes", [])),
            quiet_hours=data.get("quiet_hours", True),
        )


def _minutes(value: timedelta) -> int:
    return int(value.total_seconds() // 60)


H = timedelta(hours=1)
D = timedelta(days=1)

# Design §4 / research/domain.md §4.2. Instrument ids are fixed (design §5).
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        "post_infusion_2h",
        RuleKind.AFTER_SESSION,
        "post_infusion",
        offset=2 * H,
        window=4 * H,
        reminders=(timedelta(minutes=30),),
    ),
    Rule(
        "post_infusion_24h", RuleKind.AFTER_SESSION, "post_infusion", offset=24 * H, window=12 * H, reminders=(2 * H,)
    ),
    Rule(
        "post_infusion_72h", RuleKind.AFTER_SESSION, "post_infusion", offset=72 * H, window=24 * H, reminders=(4 * H,)
    ),
    Rule("daily_diary", RuleKind.DAILY, "daily_diary", window=7 * H, reminders=(H, 2 * H)),
    Rule(
        "pre_session", RuleKind.BEFORE_SESSION, "pre_session", offset=24 * H, window=24 * H, reminders=(4 * H, 12 * H)
    ),
    Rule(
        "phq9_biweekly",
        RuleKind.EVERY_N_DAYS,
        "phq9",
        at=time(18, 0),
        every_days=14,
        window=3 * D,
        reminders=(D, 2 * D),
    ),
    Rule(
        "gad7_biweekly",
        RuleKind.EVERY_N_DAYS,
        "gad7",
        at=time(18, 0),
        every_days=14,
        window=3 * D,
        reminders=(D, 2 * D),
    ),
    Rule("pgic_course_end", RuleKind.COURSE_END, "pgic", offset=7 * D, window=7 * D, reminders=(2 * D, 4 * D)),
)
