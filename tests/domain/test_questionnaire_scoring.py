"""Instrument definitions and scoring: worked examples from the published rules, answer checks, loader refusals,
a clinic-licensed instrument added as a file and offered to that clinic only, and the PHQ-9's safety flag."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from api.container import build_services
from api.domain.actor import Actor, Role
from api.domain.errors import BadInput
from api.domain.questionnaire import instruments
from api.domain.questionnaire.instruments import DefinitionError, Registry, get_instrument, load_file, parse
from api.domain.questionnaire.scoring import check_answers, score
from tests.conftest import make_settings

REGISTRY = Registry.load()
# The clinic holding the BPI licence below, and one that does not.
LICENSEE = UUID("6f1c2d3e-4a5b-4c6d-8e7f-901234567890")
OTHER = UUID("0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d")


def scored(instrument_id: str, codes: list[int], **extra: int) -> tuple[int | None, str | None, dict[str, Any]]:
    """Answers given in item order, as a phone sends them, checked and scored."""
    instrument = REGISTRY.get(instrument_id)
    items = [i.id for i in instrument.items if i.required]
    answers = check_answers(instrument, [*zip(items, codes, strict=True), *extra.items()])
    result = score(instrument, answers)
    return result.score, result.band, result.derived


# PHQ-9 (Kroenke, Spitzer & Williams 2001): the sum of items 1–9, 0–27; 0–4 minimal, 5–9 mild, 10–14 moderate,
# 15–19 moderately severe, 20–27 severe. Each case sits on a band's edge.
@pytest.mark.parametrize(
    ("codes", "total", "band"),
    [
        ([0, 0, 0, 0, 0, 0, 0, 0, 0], 0, "minimal"),
        ([1, 1, 1, 1, 0, 0, 0, 0, 0], 4, "minimal"),
        ([2, 1, 1, 1, 0, 0, 0, 0, 0], 5, "mild"),
        ([3, 3, 1, 1, 1, 0, 0, 0, 0], 9, "mild"),
        ([2, 2, 2, 2, 2, 0, 0, 0, 0], 10, "moderate"),
        ([3, 3, 2, 2, 2, 1, 1, 0, 0], 14, "moderate"),
        ([3, 3, 3, 3, 3, 0, 0, 0, 0], 15, "moderately severe"),
        ([3, 3, 3, 2, 2, 2, 2, 2, 0], 19, "moderately severe"),
        ([3, 3, 3, 3, 2, 2, 2, 2, 0], 20, "severe"),
        ([3, 3, 3, 3, 3, 3, 3, 3, 3], 27, "severe"),
    ],
)
def test_phq9_is_the_sum_of_items_1_to_9_banded_at_5_10_15_20(codes: list[int], total: int, band: str) -> None:
    assert scored("phq9", codes)[:2] == (total, band)


def test_the_phq9_difficulty_item_is_recorded_but_not_scored() -> None:
    assert scored("phq9", [0] * 9, phq9_difficulty=3)[:2] == (0, "minimal")
    assert scored("phq9", [1] * 9, phq9_difficulty=0)[:2] == (9, "mild")


@pytest.mark.parametrize(("item9", "flagged"), [(0, False), (1, True), (2, True), (3, True)])
def test_phq9_item_9_at_several_days_or_more_raises_the_self_harm_flag(item9: int, *, flagged: bool) -> None:
    total, band, derived = scored("phq9", [0, 0, 0, 0, 0, 0, 0, 0, item9])
    # A low total does not hide it: one "several days" on item 9 alone is a minimal score, and still flagged.
    assert (total, band) == (item9, "minimal")
    assert derived == {"self_harm": flagged}


# GAD-7 (Spitzer et al. 2006): the sum of 7 items, 0–21; 0–4 minimal, 5–9 mild, 10–14 moderate, 15–21 severe.
@pytest.mark.parametrize(
    ("codes", "total", "band"),
    [
        ([0, 0, 0, 0, 0, 0, 0], 0, "minimal"),
        ([1, 1, 1, 1, 0, 0, 0], 4, "minimal"),
        ([1, 1, 1, 1, 1, 0, 0], 5, "mild"),
        ([3, 3, 3, 0, 0, 0, 0], 9, "mild"),
        ([2, 2, 2, 2, 2, 0, 0], 10, "moderate"),
        ([2, 2, 2, 2, 2, 2, 2], 14, "moderate"),
        ([3, 3, 3, 3, 3, 0, 0], 15, "severe"),
        ([3, 3, 3, 3, 3, 3, 3], 21, "severe"),
    ],
)
def test_gad7_is_the_sum_of_7_items_banded_at_5_10_15(codes: list[int], total: int, band: str) -> None:
    assert scored("gad7", codes) == (total, band, {})


# PHQ-2 (Kroenke, Spitzer & Williams 2003): items 1–2 of the PHQ-9, 0–6; a total of 3 or more is a positive screen.
@pytest.mark.parametrize(
    ("codes", "total", "band"),
    [([0, 0], 0, "negative"), ([1, 1], 2, "negative"), ([2, 0], 2, "negative"), ([2, 1], 3, "positive"),
     ([0, 3], 3, "positive"), ([3, 3], 6, "positive")],
)  # fmt: skip
def test_phq2_screens_positive_from_3(codes: list[int], total: int, band: str) -> None:
    assert scored("phq2", codes) == (total, band, {})


# PGIC (7-point, PhenX 860801): categorical; the score is the code and the band its label.
@pytest.mark.parametrize(
    ("code", "label"),
    [(1, "very much improved"), (2, "much improved"), (3, "minimally improved"), (4, "no change"),
     (5, "minimally worse"), (6, "much worse"), (7, "very much worse")],
)  # fmt: skip
def test_pgic_scores_the_code_and_bands_its_label(code: int, label: str) -> None:
    assert scored("pgic", [code]) == (code, label, {})


def test_answers_come_back_in_the_instruments_order_whatever_order_they_were_sent_in() -> None:
    gad7 = REGISTRY.get("gad7")
    sent = [("gad7_7", 1), ("gad7_1", 2), ("gad7_4", 0), ("gad7_2", 3), ("gad7_6", 1), ("gad7_3", 0), ("gad7_5", 2)]
    checked = check_answers(gad7, sent)
    assert list(checked.items()) == [
        ("gad7_1", 2), ("gad7_2", 3), ("gad7_3", 0), ("gad7_4", 0), ("gad7_5", 2), ("gad7_6", 1), ("gad7_7", 1)
    ]  # fmt: skip


PHQ9_ZEROS = [(f"phq9_{n}", 0) for n in range(1, 10)]


@pytest.mark.parametrize(
    ("answers", "field", "message"),
    [
        ([*PHQ9_ZEROS, ("phq9_10", 0)], "answers[phq9_10]", "phq9_10 is not an item of phq9"),
        ([*PHQ9_ZEROS, ("gad7_1", 0)], "answers[gad7_1]", "gad7_1 is not an item of phq9"),
        ([*PHQ9_ZEROS, ("phq9_4", 1)], "answers[phq9_4]", "phq9_4 is answered twice"),
        ([*PHQ9_ZEROS, ("phq9_4", 0)], "answers[phq9_4]", "phq9_4 is answered twice"),
        ([("phq9_1", 4), *PHQ9_ZEROS[1:]], "answers[phq9_1]", "phq9_1 must be one of 0–3"),
        ([*PHQ9_ZEROS[:8], ("phq9_9", -1)], "answers[phq9_9]", "phq9_9 must be one of 0–3"),
        ([*PHQ9_ZEROS, ("phq9_difficulty", 4)], "answers[phq9_difficulty]", "phq9_difficulty must be one of 0–3"),
        (PHQ9_ZEROS[:2] + PHQ9_ZEROS[3:], "answers[phq9_3]", "phq9_3 is required"),
        ([], "answers[phq9_1]", "phq9_1 is required"),
    ],
)
def test_answers_that_cannot_be_scored_are_refused_naming_the_item(
    answers: list[tuple[str, int]], field: str, message: str
) -> None:
    with pytest.raises(BadInput) as refused:
        check_answers(REGISTRY.get("phq9"), answers)
    assert (refused.value.field, refused.value.message) == (field, message)


@pytest.mark.parametrize("code", [0, 8, -1])
def test_pgic_refuses_codes_outside_1_to_7(code: int) -> None:
    with pytest.raises(BadInput) as refused:
        check_answers(REGISTRY.get("pgic"), [("pgic", code)])
    assert (refused.value.field, refused.value.message) == ("answers[pgic]", "pgic must be one of 1–7")


# The codes as research/domain.md §5.1 lists them: panel and total-score codes differ.
def test_loinc_codes_are_the_verified_ones() -> None:
    phq9, gad7, phq2, pgic = (get_instrument(i) for i in ("phq9", "gad7", "phq2", "pgic"))
    assert (phq9.loinc_panel, phq9.loinc_total) == ("44249-1", "44261-6")
    assert [i.loinc for i in phq9.items] == [
        "44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8", "69722-7"
    ]  # fmt: skip
    assert [i.id for i in phq9.items] == [*(f"phq9_{n}" for n in range(1, 10)), "phq9_difficulty"]
    assert [(o.code, o.loinc) for o in phq9.items[0].options] == [
        (0, "LA6568-5"), (1, "LA6569-3"), (2, "LA6570-1"), (3, "LA6571-9")
    ]  # fmt: skip
    assert (gad7.loinc_panel, gad7.loinc_total) == ("69737-5", "70274-6")
    assert [i.loinc for i in gad7.items] == [
        "69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"
    ]  # fmt: skip
    assert (phq2.loinc_panel, phq2.loinc_total) == ("55757-9", "55758-7")
    assert [i.id for i in phq2.items] == ["phq2_1", "phq2_2"]
    assert (pgic.loinc_panel, pgic.loinc_total, pgic.items[0].loinc) == (None, None, None)


def test_every_built_in_instrument_is_free_to_use_and_has_a_licence_note() -> None:
    current = REGISTRY.current(OTHER)
    assert [i.id for i in current] == [
        "daily_diary", "gad7", "pgic", "phq2", "phq9", "post_infusion", "pre_session"
    ]  # fmt: skip
    assert all(i.licence_free and i.licence_note for i in current)
    assert {i.id for i in current if i.answered_by == "diary"} == {"daily_diary", "post_infusion", "pre_session"}


def test_diary_check_ins_describe_the_diary_fields_they_collect() -> None:
    post = {i.id: i for i in get_instrument("post_infusion").items}
    assert post["pain_now"].field == "pain_now"
    assert [o.code for o in post["pain_now"].options] == list(range(11))
    for effect in ("NAUSEA", "DIZZINESS", "DISSOCIATION", "HALLUCINATIONS", "URINARY_FREQUENCY", "DYSURIA"):
        assert post[effect.lower()].field == f"side_effects.{effect}"
        assert [o.code for o in post[effect.lower()].options] == [0, 1, 2, 3]
    daily = {i.id: i for i in get_instrument("daily_diary").items}
    assert (daily["sleep_hours"].loinc, daily["sleep_hours"].unit, daily["sleep_hours"].maximum) == ("93832-4", "h", 24)


@pytest.mark.parametrize(
    ("instrument_id", "version", "message"),
    [("bpi", None, "there is no instrument 'bpi'"), ("phq9", "2", "phq9 has no version '2'")],
)
def test_an_unknown_instrument_or_version_is_bad_input_on_instrument(
    instrument_id: str, version: str | None, message: str
) -> None:
    with pytest.raises(BadInput) as refused:
        get_instrument(instrument_id, version)
    assert (refused.value.field, refused.value.message) == ("instrument", message)


# A clinic that holds a BPI licence adds it as a file. Interference is the mean of the 7 items, valid when at least
# 4 are answered (ePPOC); severity the mean of the 4 intensity items.
BPI_ITEMS = [
    "worst",
    "least",
    "average",
    "now",
    "activity",
    "mood",
    "walking",
    "work",
    "relations",
    "sleep",
    "enjoyment",
]
BPI: dict[str, Any] = {
    "id": "bpi_sf",
    "version": "1",
    "title": "Brief Pain Inventory (short form), interference",
    "licence": {"free": False, "note": "Used under the clinic's licence from MD Anderson.", "clinics": [str(LICENSEE)]},
    "recall_period": "the last 24 hours",
    "recall_days": 1,
    "loinc_panel": None,
    "loinc_total": "77565-0",
    "option_sets": {"zero_to_ten": [{"code": n, "label": str(n)} for n in range(11)]},
    "items": [
        {"id": f"bpi_{name}", "text": name, "options": "zero_to_ten", "required": False, "scored": n >= 4}
        for n, name in enumerate(BPI_ITEMS)
    ],
    "scoring": {"method": "mean", "min_answered": 4},
    "subscales": [{"id": "severity", "method": "mean", "items": [f"bpi_{n}" for n in BPI_ITEMS[:4]]}],
    "bands": [[0, "mild"], [5, "moderate"], [7, "severe"]],
}


def write(directory: Path, name: str, definition: object) -> Path:
    path = directory / name
    path.write_text(json.dumps(definition), encoding="utf-8")
    return path


def test_a_clinic_adds_a_licensed_instrument_as_a_definition_file(tmp_path: Path) -> None:
    write(tmp_path, "bpi.json", BPI)
    registry = Registry.load(tmp_path)
    bpi = registry.get("bpi_sf")
    assert (bpi.version, bpi.licence_free, bpi.loinc_total) == ("1", False, "77565-0")
    assert registry.get("phq9").loinc_panel == "44249-1"  # the built-ins are still there
    answers = {"bpi_worst": 8, "bpi_least": 2, "bpi_average": 5, "bpi_now": 4}
    interference = {"bpi_activity": 3, "bpi_mood": 4, "bpi_walking": 5, "bpi_work": 6, "bpi_relations": 2}
    interference |= {"bpi_sleep": 7, "bpi_enjoyment": 3}
    # 30 / 7 = 4.2857… → 4.29, reported as 4, mild; severity 19 / 4 = 4.75.
    result = score(bpi, check_answers(bpi, [*answers.items(), *interference.items()]))
    assert (result.score, result.band) == (4, "mild")
    assert result.derived == {"severity": 4.75, "score_exact": 4.29}


def test_a_mean_is_banded_on_its_exact_value_and_needs_its_minimum_of_answers(tmp_path: Path) -> None:
    write(tmp_path, "bpi.json", BPI)
    bpi = Registry.load(tmp_path).get("bpi_sf")
    # 26 / 4 = 6.5: reported as 7 (half up), but below the severe band's 7.
    four = [("bpi_activity", 5), ("bpi_mood", 6), ("bpi_walking", 7), ("bpi_work", 8)]
    result = score(bpi, check_answers(bpi, four))
    assert (result.score, result.band, result.derived) == (7, "moderate", {"severity": None, "score_exact": 6.5})
    with pytest.raises(BadInput) as refused:
        check_answers(bpi, four[:3])
    assert refused.value.field == "answers"
    assert refused.value.message.startswith("at least 4 of bpi_activity, bpi_mood, ")


def test_a_later_version_becomes_current_and_the_earlier_stays_reachable(tmp_path: Path) -> None:
    write(tmp_path, "bpi-1.json", BPI)
    write(tmp_path, "bpi-1.10.json", {**BPI, "version": "1.10"})
    write(tmp_path, "bpi-1.9.json", {**BPI, "version": "1.9"})
    registry = Registry.load(tmp_path)
    assert registry.get("bpi_sf").version == "1.10"  # numerically, not as text
    assert registry.get("bpi_sf", "1").version == "1"


def test_get_instrument_answers_from_the_installed_registry(tmp_path: Path) -> None:
    write(tmp_path, "bpi.json", BPI)
    before = instruments.installed()
    instruments.install(Registry.load(tmp_path))
    try:
        assert get_instrument("bpi_sf").title == BPI["title"]
    finally:
        instruments.install(before)
    with pytest.raises(BadInput):
        get_instrument("bpi_sf")


def mutated(change: Any) -> dict[str, Any]:
    definition = copy.deepcopy(BPI)
    change(definition)
    return definition


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        (lambda d: d.pop("items"), "items", "is required"),
        (lambda d: d.update(scoring_method="sum"), "(top level)", "unknown key 'scoring_method'"),
        (lambda d: d.update(id="BPI"), "id", "must be lower-case letters"),
        (lambda d: d.update(version="v2"), "version", "must be dotted numbers"),
        (lambda d: d.update(answered_by="phone"), "answered_by", "must be one of 'questionnaire', 'diary'"),
        (lambda d: d["licence"].pop("note"), "licence.note", "is required"),
        (lambda d: d["licence"].pop("clinics"), "licence.clinics", "names the clinics that hold it"),
        (lambda d: d["licence"].update(clinics=[]), "licence.clinics", "at least one clinic"),
        (lambda d: d["licence"].update(clinics=str(LICENSEE)), "licence.clinics", "must be a list"),
        (lambda d: d["licence"].update(clinics=[str(LICENSEE), "clinic-7"]), "licence.clinics[1]", "a UUID"),
        (lambda d: d["licence"].update(free=True), "licence.clinics", "a free instrument is every clinic's"),
        (lambda d: d["licence"].update(free="no"), "licence.free", "must be true or false"),
        (lambda d: d.update(loinc_total="77565-1"), "loinc_total", "'77565-1' is not a LOINC code"),
        (lambda d: d["items"][2].update(loinc="44249"), "items[2].loinc", "'44249' is not a LOINC code"),
        (lambda d: d["items"][3].update(options="zero_to_five"), "items[3].options", "names no option set"),
        (lambda d: d["items"][3].update(kind="number"), "items[3].kind", "answered with an option code"),
        (lambda d: d["items"][5].update(id="bpi_worst"), "items[5].id", "'bpi_worst' is used twice"),
        (lambda d: d["items"][0].update(required="yes"), "items[0].required", "must be true or false"),
        (lambda d: d["option_sets"]["zero_to_ten"][4].update(code="4"), "option_sets.zero_to_ten[4].code",
         "must be an integer"),
        (lambda d: d["option_sets"]["zero_to_ten"][4].update(code=True), "option_sets.zero_to_ten[4].code",
         "must be an integer"),
        (lambda d: d["option_sets"]["zero_to_ten"][4].update(code=3), "option_sets.zero_to_ten", "lists a code twice"),
        (lambda d: d["scoring"].update(method="median"), "scoring.method", "must be one of"),
        (lambda d: d["scoring"].update(items=["bpi_mood", "bpi_nope"]), "scoring.items", "'bpi_nope' is not"),
        (lambda d: d["scoring"].update(min_answered=8), "scoring.min_answered", "is more than the 7 items"),
        (lambda d: d.update(scoring={"method": "sum"}), "scoring.items", "cannot include the optional item"),
        (lambda d: d.update(bands=[[0, "mild"], [7, "severe"], [5, "moderate"]]), "bands[2][0]", "increasing order"),
        (lambda d: d.update(bands=[[0, "x" * 33]]), "bands[0][1]", "at most 32 characters"),
        (lambda d: d.update(bands=[]), "bands", "a scored instrument lists its bands"),
        (lambda d: d.update(flags=[{"item": "bpi_nope", "min": 1, "flag": "x"}]), "flags[0].item", "not a choice"),
        (lambda d: d.update(flags=[{"item": "bpi_mood", "min": 9, "flag": "severity"}]), "flags",
         "'severity' names two derived values"),
    ],
)  # fmt: skip
def test_a_malformed_definition_is_refused_naming_the_file_and_key(
    tmp_path: Path, change: Any, key: str, message: str
) -> None:
    path = write(tmp_path, "clinic-bpi.json", mutated(change))
    with pytest.raises(DefinitionError) as refused:
        Registry.load(tmp_path)
    assert str(refused.value).startswith(f"{path}: {key}: ")
    assert message in str(refused.value)


def test_a_file_that_is_not_json_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"id": "bpi_sf", ', encoding="utf-8")
    with pytest.raises(DefinitionError, match=rf"^{path}: cannot be read as JSON"):
        load_file(path)


def test_a_definition_cannot_replace_a_version_already_defined(tmp_path: Path) -> None:
    phq9 = json.loads((instruments.BUILT_IN_DIR / "phq9-1.json").read_text(encoding="utf-8"))
    path = write(tmp_path, "phq9.json", {**phq9, "bands": [[0, "fine"]]})
    with pytest.raises(DefinitionError, match=rf"^{path}: phq9 version 1 is already defined in .*phq9-1\.json$"):
        Registry.load(tmp_path)


def test_a_missing_instruments_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="the instruments directory does not exist"):
        Registry.load(tmp_path / "nowhere")


def test_a_built_in_that_needs_a_licence_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "bpi.json", BPI)
    monkeypatch.setattr(instruments, "BUILT_IN_DIR", tmp_path)
    with pytest.raises(DefinitionError, match=rf"^{path}: licence.free: a built-in instrument must be free to use"):
        Registry.load()


def test_a_diary_check_in_cannot_be_scored() -> None:
    definition = {**BPI, "answered_by": "diary"}
    with pytest.raises(DefinitionError, match=r"^clinic: scoring: a diary check-in is not scored here"):
        parse(definition, "clinic")


def test_the_settings_instruments_dir_reaches_the_service_and_get_instrument(tmp_path: Path) -> None:
    write(tmp_path, "bpi.json", BPI)
    before = instruments.installed()
    try:
        services = build_services(make_settings().model_copy(update={"instruments_dir": tmp_path}))
        clinician = Actor(account_id=uuid4(), role=Role.CLINICIAN, clinic_id=LICENSEE)
        assert services.questionnaires.instrument(clinician, "bpi_sf").licence_free is False
        assert get_instrument("bpi_sf").loinc_total == "77565-0"
    finally:
        instruments.install(before)


def test_a_malformed_file_in_the_settings_dir_stops_start_up_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "bpi.json", {**BPI, "bands": "low to high"})
    before = instruments.installed()
    try:
        with pytest.raises(DefinitionError, match=rf"^{path}: bands: must be a list$"):
            build_services(make_settings().model_copy(update={"instruments_dir": tmp_path}))
    finally:
        instruments.install(before)
    assert instruments.installed() is before


def test_a_licensed_instrument_is_offered_only_to_the_clinics_that_hold_the_licence(tmp_path: Path) -> None:
    write(tmp_path, "bpi.json", BPI)
    registry = Registry.load(tmp_path)
    assert registry.get("bpi_sf").clinics == {LICENSEE}
    assert "bpi_sf" in [i.id for i in registry.current(LICENSEE)]
    assert [i.id for i in registry.current(OTHER)] == [i.id for i in REGISTRY.current(OTHER)]
    assert registry.for_clinic(LICENSEE, "bpi_sf", "1").version == "1"
    # Refused as if it did not exist, at any version: another clinic learns nothing of it.
    for version in (None, "1"):
        with pytest.raises(BadInput) as refused:
            registry.for_clinic(OTHER, "bpi_sf", version)
        assert (refused.value.field, refused.value.message) == ("instrument", "there is no instrument 'bpi_sf'")
    # Free instruments are every clinic's.
    assert registry.for_clinic(OTHER, "phq9").id == "phq9"
    # Stored responses stay readable whoever holds the licence (the FHIR export reads the definition by version).
    assert registry.get("bpi_sf", "1").title == BPI["title"]


def test_a_licensed_later_version_is_current_only_for_its_licensees(tmp_path: Path) -> None:
    # A clinic licenses a revised GAD-7 of its own; every other clinic keeps the free version 1.
    gad7 = json.loads((instruments.BUILT_IN_DIR / "gad7-1.json").read_text(encoding="utf-8"))
    write(tmp_path, "gad7-2.json", {**gad7, "version": "2", "licence": BPI["licence"]})
    registry = Registry.load(tmp_path)
    assert registry.for_clinic(LICENSEE, "gad7").version == "2"
    assert registry.for_clinic(OTHER, "gad7").version == "1"
    assert {i.id: i.version for i in registry.current(OTHER)}["gad7"] == "1"
    assert {i.id: i.version for i in registry.current(LICENSEE)}["gad7"] == "2"
    with pytest.raises(BadInput) as refused:
        registry.for_clinic(OTHER, "gad7", "2", version_field="instrument_version")
    assert (refused.value.field, refused.value.message) == ("instrument_version", "gad7 has no version '2'")


PHQ9_V1: dict[str, Any] = json.loads((instruments.BUILT_IN_DIR / "phq9-1.json").read_text(encoding="utf-8"))


def phq9_v2(change: Any) -> dict[str, Any]:
    definition = copy.deepcopy({**PHQ9_V1, "version": "2"})
    change(definition)
    return definition


def _rename_item9(d: dict[str, Any]) -> None:
    d["items"][8]["id"] = "phq9_i9"
    d["flags"][0]["item"] = "phq9_i9"


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("flags"),
        lambda d: d.update(flags=[]),
        lambda d: d["flags"][0].update(flag="suicidality"),
        lambda d: d["flags"][0].update(min=2),
        lambda d: d["flags"][0].update(item="phq9_8"),
        _rename_item9,
    ],
    ids=["no-flags", "empty-flags", "renamed-flag", "min-2", "other-item", "renamed-item"],
)
def test_a_phq9_definition_without_the_self_harm_flag_on_item_9_at_1_is_refused(tmp_path: Path, change: Any) -> None:
    # A clinic's own PHQ-9 version: the crisis message and the item-9 alert hang on this flag and this item.
    path = write(tmp_path, "phq9-2.json", phq9_v2(change))
    with pytest.raises(DefinitionError) as refused:
        Registry.load(tmp_path)
    assert str(refused.value) == f"{path}: flags: a phq9 definition raises 'self_harm' from item 'phq9_9' at min 1"


def test_a_phq9_version_that_keeps_the_self_harm_flag_loads(tmp_path: Path) -> None:
    write(tmp_path, "phq9-2.json", phq9_v2(lambda d: d.update(title="PHQ-9, clinic wording")))
    assert Registry.load(tmp_path).get("phq9").version == "2"
    # The flag is checked on phq9 only: another instrument may flag what it likes, or nothing.
    write(tmp_path, "bpi.json", {**BPI, "flags": [{"item": "bpi_mood", "min": 9, "flag": "self_harm"}]})
    assert Registry.load(tmp_path).get("bpi_sf").flags[0].item == "bpi_mood"


RED_FLAGS = {
    "chest_pain": "side_effects.CHEST_PAIN",
    "breathing_difficulty": "side_effects.BREATHING_DIFFICULTY",
    "loss_of_consciousness": "side_effects.LOSS_OF_CONSCIOUSNESS",
}


@pytest.mark.parametrize("instrument_id", ["post_infusion", "pre_session"])
def test_the_check_ins_ask_the_red_flag_symptoms_as_diary_side_effects(instrument_id: str) -> None:
    # The critical red-flag rule reads these three side-effect codes: a check-in that never asks them cannot raise it.
    items = {i.id: i for i in get_instrument(instrument_id).items}
    assert {item_id: items[item_id].field for item_id in RED_FLAGS if item_id in items} == RED_FLAGS
    for item_id in RED_FLAGS:
        assert [o.code for o in items[item_id].options] == [0, 1, 2, 3]
        assert (items[item_id].required, items[item_id].scored) == (False, False)


# A clinic holding a PROMIS licence adds a short form whose raw sum converts to a T-score by the published table.
# The table here is the clinic's data, made up for the test: only the mechanism is under test.
PROMIS_TABLE = {str(raw): 40.0 + (raw - 4) * 2.25 for raw in range(4, 21)}  # 4 → 40.0 … 20 → 76.0
PROMIS: dict[str, Any] = {
    "id": "promis_pi_4a",
    "version": "1",
    "title": "PROMIS Pain Interference 4a",
    "licence": {"free": False, "note": "Used with HealthMeasures' permission.", "clinics": [str(LICENSEE)]},
    "recall_period": "the past 7 days",
    "recall_days": 7,
    "loinc_panel": None,
    "loinc_total": None,
    "option_sets": {"one_to_five": [{"code": n, "label": str(n)} for n in range(1, 6)]},
    "items": [{"id": f"pi_{n}", "text": f"item {n}", "options": "one_to_five"} for n in range(1, 5)],
    "scoring": {"method": "sum", "table": PROMIS_TABLE},
    "bands": [[0, "within normal limits"], [55, "mild"], [60, "moderate"], [70, "severe"]],
}


def test_a_clinic_adds_a_promis_form_scored_by_its_conversion_table(tmp_path: Path) -> None:
    write(tmp_path, "promis.json", PROMIS)
    promis = Registry.load(tmp_path).get("promis_pi_4a")
    # Raw 3 + 4 + 2 + 4 = 13 → 40 + 9 × 2.25 = 60.25: reported as 60, moderate (≥ 60).
    result = score(promis, check_answers(promis, [("pi_1", 3), ("pi_2", 4), ("pi_3", 2), ("pi_4", 4)]))
    assert (result.score, result.band) == (60, "moderate")
    assert result.derived == {"raw_score": 13, "score_exact": 60.25}
    # Raw 12 → 58.0: mild; the band reads the converted score, not the raw sum.
    result = score(promis, check_answers(promis, [("pi_1", 3), ("pi_2", 3), ("pi_3", 3), ("pi_4", 3)]))
    assert (result.score, result.band, result.derived["raw_score"]) == (58, "mild", 12)


def _table_without(raw: str) -> dict[str, float]:
    return {k: v for k, v in PROMIS_TABLE.items() if k != raw}


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        (_table_without("11"), "scoring.table", "no converted score for the raw sum 11"),
        ({**PROMIS_TABLE, "21": 80.0}, "scoring.table.21", "raw sums run from 4 to 20"),
        ({**PROMIS_TABLE, "x": 80.0}, "scoring.table.x", "raw sums run from 4 to 20"),
        ({**PROMIS_TABLE, "7": "high"}, "scoring.table.7", "must be a number"),
        ([40.0, 42.0], "scoring.table", "must be an object"),
    ],
)
def test_a_conversion_table_that_leaves_a_raw_sum_unscored_is_refused(
    tmp_path: Path, table: object, key: str, message: str
) -> None:
    path = write(tmp_path, "promis.json", {**PROMIS, "scoring": {"method": "sum", "table": table}})
    with pytest.raises(DefinitionError) as refused:
        Registry.load(tmp_path)
    assert str(refused.value).startswith(f"{path}: {key}: ")
    assert message in str(refused.value)


def test_only_a_sum_converts_by_table(tmp_path: Path) -> None:
    path = write(tmp_path, "promis.json", {**PROMIS, "scoring": {"method": "mean", "table": PROMIS_TABLE}})
    with pytest.raises(DefinitionError, match=rf"^{path}: scoring.table: converts a sum only$"):
        Registry.load(tmp_path)


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        # json.loads reads NaN and Infinity; Python's json.dumps writes them so.
        ('"7": NaN', "scoring.table.7", "must be a finite number"),
        ('"7": Infinity', "scoring.table.7", "must be a finite number"),
        ('"20": -Infinity', "scoring.table.20", "must be a finite number"),
        ('"20": 1e999', "scoring.table.20", "must be a finite number"),  # too large for a float: inf
        # Each digit-like but not a raw sum: "--5" got past lstrip("-").isdigit() and then crashed int().
        ('"--5": 40.0', "scoring.table.--5", "raw sums run from 4 to 20"),
        ('"+5": 40.0', "scoring.table.+5", "raw sums run from 4 to 20"),
        ('"1_0": 40.0', "scoring.table.1_0", "raw sums run from 4 to 20"),
        ('" 5": 40.0', "scoring.table. 5", "raw sums run from 4 to 20"),
        ('"٥": 40.0', "scoring.table.٥", "raw sums run from 4 to 20"),  # an Arabic-Indic 5: int() would take it
        # The score column is a SmallInt: −32768..32767 once rounded half up, as scoring rounds.
        ('"20": 32767.5', "scoring.table.20", "a score outside -32768..32767 cannot be stored"),
        ('"4": -32768.5', "scoring.table.4", "a score outside -32768..32767 cannot be stored"),
        ('"4": -40000', "scoring.table.4", "a score outside -32768..32767 cannot be stored"),
        (f'"20": {10**400}', "scoring.table.20", "a score outside -32768..32767 cannot be stored"),
    ],
)
def test_a_conversion_table_entry_that_cannot_score_is_refused_at_load_naming_it(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    # Written as text: the entry replaces the table's own for that raw sum (JSON keeps the last of a repeated key).
    table = json.dumps(PROMIS_TABLE)[:-1] + ", " + text + "}"
    source = json.dumps({**PROMIS, "scoring": {"method": "sum", "table": "TABLE"}}).replace('"TABLE"', table)
    path = tmp_path / "promis.json"
    path.write_text(source, encoding="utf-8")
    with pytest.raises(DefinitionError) as refused:
        Registry.load(tmp_path)
    assert str(refused.value) == f"{path}: {key}: {message}"


def test_a_conversion_table_at_the_edges_of_the_score_column_loads_and_scores(tmp_path: Path) -> None:
    table = {**PROMIS_TABLE, "4": -32768.4, "20": 32767.4}
    write(tmp_path, "promis.json", {**PROMIS, "scoring": {"method": "sum", "table": table}})
    promis = Registry.load(tmp_path).get("promis_pi_4a")
    # Raw 4 (every item at 1) → −32768.4, rounded half up to −32768; raw 20 (every item at 5) → 32767.4 → 32767.
    lowest = score(promis, check_answers(promis, [(f"pi_{n}", 1) for n in range(1, 5)]))
    highest = score(promis, check_answers(promis, [(f"pi_{n}", 5) for n in range(1, 5)]))
    assert (lowest.score, lowest.derived["raw_score"]) == (-32768, 4)
    assert (highest.score, highest.derived["raw_score"]) == (32767, 20)


@pytest.mark.parametrize(
    ("text", "key"),
    [('[NaN, "mild"]', "bands[1][0]"), ('[Infinity, "mild"]', "bands[1][0]")],
)
def test_a_band_that_is_not_a_finite_number_is_refused(tmp_path: Path, text: str, key: str) -> None:
    source = json.dumps({**PROMIS, "bands": [[0, "within normal limits"], "BAND"]}).replace('"BAND"', text)
    path = tmp_path / "promis.json"
    path.write_text(source, encoding="utf-8")
    with pytest.raises(DefinitionError) as refused:
        Registry.load(tmp_path)
    assert str(refused.value) == f"{path}: {key}: must be a finite number"


def _big_sum(codes: list[int]) -> dict[str, Any]:
    options = [{"code": c, "label": str(c)} for c in codes]
    return {
        **PROMIS,
        "items": [{"id": f"pi_{n}", "text": f"item {n}", "options": options} for n in range(1, 3)],
        "scoring": {"method": "sum"},
        "bands": [[-70000, "any"]],
    }


@pytest.mark.parametrize(
    ("codes", "refused"),
    [
        # Two items: 2 × 16384 = 32768 is one past the column, 2 × 16383 = 32766 fits; likewise below zero.
        ([0, 16384], True),
        ([0, 16383], False),
        ([-16385, 0], True),
        ([-16384, 0], False),
    ],
)
def test_a_plain_sum_beyond_the_score_column_is_refused(tmp_path: Path, codes: list[int], *, refused: bool) -> None:
    path = write(tmp_path, "big.json", _big_sum(codes))
    if not refused:
        assert Registry.load(tmp_path).get("promis_pi_4a").scoring.method.value == "sum"
        return
    with pytest.raises(DefinitionError) as refusal:
        Registry.load(tmp_path)
    assert str(refusal.value) == f"{path}: scoring: a score outside -32768..32767 cannot be stored"


def test_a_table_scored_instrument_is_hashable_and_equal_to_itself_loaded_again(tmp_path: Path) -> None:
    write(tmp_path, "promis.json", PROMIS)
    first, second = Registry.load(tmp_path).get("promis_pi_4a"), Registry.load(tmp_path).get("promis_pi_4a")
    assert first is not second
    assert first == second
    assert hash(first) == hash(second)
    assert {first, second} == {first}
    table = first.scoring.table
    assert table is not None
    assert table[:2] == ((4, 40.0), (5, 42.25))
    assert len(table) == 17


def test_loinc_converted_names_the_score_a_table_converts_to(tmp_path: Path) -> None:
    write(tmp_path, "promis.json", {**PROMIS, "loinc_total": "99001-0", "loinc_converted": "99002-8"})
    promis = Registry.load(tmp_path).get("promis_pi_4a")
    assert (promis.loinc_total, promis.loinc_converted) == ("99001-0", "99002-8")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"loinc_converted": "99002-7"}, "'99002-7' is not a LOINC code"),
        (
            {"loinc_converted": "99002-8", "scoring": {"method": "sum"}},
            "names the score a scoring table converts to: this scoring has none",
        ),
    ],
)
def test_a_loinc_converted_that_is_wrong_or_converts_nothing_is_refused(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = write(tmp_path, "promis.json", {**PROMIS, **change})
    with pytest.raises(DefinitionError) as refused:
        Registry.load(tmp_path)
    assert str(refused.value).startswith(f"{path}: loinc_converted: ")
    assert message in str(refused.value)


def test_a_number_too_long_for_python_to_read_is_refused_naming_the_file(tmp_path: Path) -> None:
    # Python refuses integer literals over 4300 digits with a bare ValueError, before any key is read.
    source = json.dumps({**PROMIS, "scoring": {"method": "sum", "table": "TABLE"}})
    path = tmp_path / "promis.json"
    path.write_text(source.replace('"TABLE"', '{"4": 1' + "0" * 5000 + "}"), encoding="utf-8")
    with pytest.raises(DefinitionError, match=rf"^{path}: cannot be read as JSON: "):
        Registry.load(tmp_path)


@pytest.mark.parametrize("scoring", [{"method": "mean"}, {"method": "answer", "item": "pi_1"}])
def test_a_mean_or_answer_score_beyond_the_score_column_is_refused(tmp_path: Path, scoring: dict[str, str]) -> None:
    # Its score lies within the codes: a code of 32768 can be the score.
    definition = {**_big_sum([1, 32768]), "scoring": scoring}
    if scoring["method"] == "answer":
        definition["bands"] = []
    path = write(tmp_path, "big.json", definition)
    with pytest.raises(DefinitionError) as refused:
        Registry.load(tmp_path)
    assert str(refused.value) == f"{path}: scoring: a score outside -32768..32767 cannot be stored"
    # And 32767 is storable.
    write(tmp_path, "big.json", {**definition, "items": _big_sum([1, 32767])["items"]})
    assert Registry.load(tmp_path).get("promis_pi_4a").scoring.method.value == scoring["method"]
