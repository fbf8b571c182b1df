"""Checking a submission's answers against its instrument, and scoring them by the instrument's published rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from api.domain.errors import BadInput
from api.domain.questionnaire.instruments import Instrument, Item, Method, Scale

TWO_PLACES = Decimal("0.01")


@dataclass(frozen=True)
class Scored:
    score: int | None
    band: str | None
    # Stored with the response: every declared flag as true/false, subscales, and a mean's unrounded value.
    derived: dict[str, Any] = field(default_factory=dict)

    @property
    def raised(self) -> list[str]:
        return [name for name, value in self.derived.items() if value is True]


def answer_field(item_id: str) -> str:
    """The field a refusal names: the answer to that item."""
    return f"answers[{item_id}]"


def check_answers(instrument: Instrument, answers: Sequence[tuple[str, int]]) -> dict[str, int]:
    """The answers by item id, in the instrument's order; BAD_USER_INPUT naming the first item at fault."""
    given: dict[str, int] = {}
    for item_id, value in answers:
        item = instrument.item(item_id)
        if item is None:
            raise BadInput(answer_field(item_id), f"{item_id} is not an item of {instrument.id}")
        if item_id in given:
            raise BadInput(answer_field(item_id), f"{item_id} is answered twice")
        if item.option(value) is None:
            raise BadInput(answer_field(item_id), f"{item_id} must be one of {_codes(item)}")
        given[item_id] = value
    for item in instrument.items:
        if item.required and item.id not in given:
            raise BadInput(answer_field(item.id), f"{item.id} is required")
    scoring = instrument.scoring
    if scoring.method is Method.MEAN and _answered(scoring, given) < scoring.min_answered:
        raise BadInput(
            "answers", f"at least {scoring.min_answered} of {', '.join(scoring.items)} must be answered to score"
        )
    return {item.id: given[item.id] for item in instrument.items if item.id in given}


def score(instrument: Instrument, answers: Mapping[str, int]) -> Scored:
    """Score, band and derived values of answers that passed `check_answers`."""
    derived: dict[str, Any] = {f.flag: answers.get(f.item, f.min - 1) >= f.min for f in instrument.flags}
    for sub in instrument.subscales:
        value = _value(sub.scale, answers)
        derived[sub.id] = _plain(value) if value is not None else None
    scoring = instrument.scoring
    if scoring.method is Method.NONE:
        return Scored(None, None, derived)
    if scoring.method is Method.ANSWER:
        (item_id,) = scoring.items
        item = instrument.item(item_id)
        option = item.option(answers[item_id]) if item is not None else None
        assert option is not None  # noqa: S101 -- check_answers accepted only listed codes of a required item
        return Scored(option.code, option.label, derived)
    value = _value(scoring, answers)
    assert value is not None  # noqa: S101 -- check_answers refused too few answers
    if scoring.method is Method.MEAN:
        derived["score_exact"] = float(value)
    if scoring.table is not None:
        # The raw sum is kept; the score and its band are the published conversion (a PROMIS T-score).
        derived["raw_score"] = int(value)
        value = Decimal(str(scoring.converted(int(value))))
        derived["score_exact"] = float(value)
    rounded = int(value.quantize(Decimal(1), ROUND_HALF_UP))
    return Scored(rounded, instrument.band_for(float(value)), derived)


def _value(scale: Scale, answers: Mapping[str, int]) -> Decimal | None:
    codes = [answers[i] for i in scale.items if i in answers]
    if scale.method is Method.SUM:
        return Decimal(sum(codes)) if len(codes) == len(scale.items) else None
    if len(codes) < max(scale.min_answered, 1):
        return None
    return (Decimal(sum(codes)) / len(codes)).quantize(TWO_PLACES, ROUND_HALF_UP)


def _plain(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _answered(scale: Scale, given: Mapping[str, int]) -> int:
    return sum(1 for i in scale.items if i in given)


def _codes(item: Item) -> str:
    codes = sorted(o.code for o in item.options)
    contiguous = codes == list(range(codes[0], codes[-1] + 1))
    return f"{codes[0]}–{codes[-1]}" if contiguous and len(codes) > 2 else ", ".join(map(str, codes))
