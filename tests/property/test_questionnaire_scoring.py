"""Scoring questionnaire answers (api/domain/questionnaire/scoring.py) by every built-in instrument's rules, and by
a mean-scored one built here (no built-in instrument scores by mean).

Properties:
- any complete set of listed answer codes is accepted, kept by item, and scored within the instrument's bounds
  (a sum between the sums of the lowest and highest codes; a mean between the lowest and highest code; a single
  answer's code itself); the band is the instrument's band for that score;
- bands are monotone: a higher score never falls in a lower band;
- flags: PHQ-9 item 9 ≥ 1 raises self_harm, and only then;
- a code no option has, an item the instrument lacks, an item answered twice or a required item left out is
  refused with BAD_USER_INPUT naming that answer.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.domain.errors import BadInput
from api.domain.questionnaire.instruments import (
    AnsweredBy,
    Band,
    Instrument,
    Item,
    Method,
    Option,
    Registry,
    Scale,
)
from api.domain.questionnaire.scoring import answer_field, check_answers, score
from tests.property.strategies import checked

BUILT_IN = [i for i in Registry.load().current(uuid4()) if i.answered_by is AnsweredBy.QUESTIONNAIRE]
FIVE_POINT = tuple(Option(code, f"{code}") for code in range(5))
MEAN_SCORED = Instrument(
    id="interference",
    version="1",
    title="A mean-scored form",
    licence_free=True,
    licence_note="",
    answered_by=AnsweredBy.QUESTIONNAIRE,
    recall_period=None,
    recall_days=None,
    loinc_panel=None,
    loinc_total=None,
    preamble=None,
    items=tuple(Item(f"i{n}", f"Item {n}", None, FIVE_POINT, required=n < 2) for n in range(6)),
    scoring=Scale(Method.MEAN, tuple(f"i{n}" for n in range(6)), min_answered=4),
    bands=(Band(0, "none"), Band(1.5, "some"), Band(3, "much")),
)
INSTRUMENTS = [*BUILT_IN, MEAN_SCORED]


def codes(item: Item) -> list[int]:
    return [o.code for o in item.options]


@st.composite
def answered(draw: st.DrawFn, instrument: Instrument) -> list[tuple[str, int]]:
    """A complete submission: every required item, optional ones or not, enough to score a mean, any order."""
    scale = instrument.scoring
    chosen = [i for i in instrument.items if i.required or draw(st.booleans())]
    if scale.method is Method.MEAN:
        missing = [i for i in instrument.items if i not in chosen and i.id in scale.items]
        short = max(0, scale.min_answered - sum(1 for i in chosen if i.id in scale.items))
        chosen += missing[:short]
    answers = [(i.id, draw(st.sampled_from(codes(i)))) for i in chosen]
    return draw(st.permutations(answers))


def bounds(instrument: Instrument, answers: dict[str, int]) -> tuple[float, float]:
    scale = instrument.scoring
    items = [i for i in instrument.items if i.id in scale.items and i.id in answers]
    if scale.method is Method.SUM:
        return sum(min(codes(i)) for i in items), sum(max(codes(i)) for i in items)
    return min(min(codes(i)) for i in items), max(max(codes(i)) for i in items)


@checked(300)
@given(st.sampled_from(INSTRUMENTS).flatmap(lambda i: st.tuples(st.just(i), answered(i))))
def test_complete_answers_are_scored_within_the_instruments_bounds(
    case: tuple[Instrument, list[tuple[str, int]]],
) -> None:
    instrument, answers = case

    kept = check_answers(instrument, answers)
    scored = score(instrument, kept)

    assert kept == dict(answers)
    method = instrument.scoring.method
    if method is Method.ANSWER:
        (item,) = instrument.scoring.items
        assert scored.score == kept[item]
    elif method is not Method.NONE:
        low, high = bounds(instrument, kept)
        assert scored.score is not None
        assert low <= scored.score <= high
        assert scored.band == instrument.band_for(float(scored.derived.get("score_exact", scored.score)))
    if method is Method.MEAN:
        values = [kept[i] for i in instrument.scoring.items if i in kept]
        exact = (Decimal(sum(values)) / len(values)).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert scored.derived["score_exact"] == float(exact)
        assert scored.score == int(exact.quantize(Decimal(1), ROUND_HALF_UP))
    if instrument.id == "phq9":
        assert scored.derived["self_harm"] is (kept["phq9_9"] >= 1)


@checked(200)
@given(st.sampled_from([i for i in INSTRUMENTS if i.bands]), st.floats(-50, 200), st.floats(-50, 200))
def test_a_higher_score_never_falls_in_a_lower_band(instrument: Instrument, a: float, b: float) -> None:
    order = [band.label for band in instrument.bands]
    low, high = sorted((a, b))
    band_low, band_high = instrument.band_for(low), instrument.band_for(high)

    if band_low is not None:
        assert band_high is not None
        assert order.index(band_low) <= order.index(band_high)


@st.composite
def spoiled(draw: st.DrawFn) -> tuple[Instrument, list[tuple[str, int]], str]:
    """A complete submission with one thing wrong, and the answer a refusal must name."""
    instrument = draw(st.sampled_from(INSTRUMENTS))
    answers = draw(answered(instrument))
    required = [i.id for i in instrument.items if i.required]
    kind = draw(st.sampled_from(["code", "item", "twice", "missing"] if required else ["code", "item", "twice"]))
    if kind == "code":
        n = draw(st.integers(0, len(answers) - 1))
        item_id, _ = answers[n]
        listed = codes(instrument.item(item_id))  # type: ignore[arg-type]
        answers[n] = (item_id, draw(st.integers(-(2**31), 2**31).filter(lambda c: c not in listed)))
        return instrument, answers, answer_field(item_id)
    if kind == "item":
        stranger = draw(st.text(min_size=1).filter(lambda t: instrument.item(t) is None))
        return instrument, [*answers, (stranger, 0)], answer_field(stranger)
    if kind == "twice":
        item_id, code = draw(st.sampled_from(answers))
        return instrument, [*answers, (item_id, code)], answer_field(item_id)
    left_out = draw(st.sampled_from(required))
    return instrument, [a for a in answers if a[0] != left_out], answer_field(left_out)


@checked(300)
@given(spoiled())
def test_a_wrong_answer_is_refused_naming_it(case: tuple[Instrument, list[tuple[str, int]], str]) -> None:
    instrument, answers, field = case

    with pytest.raises(BadInput) as refused:
        check_answers(instrument, answers)

    assert refused.value.field == field
