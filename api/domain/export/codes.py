"""Code systems and codes used in exports (research/domain.md §5). Stable: recipients map on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.domain.errors import BadInput
from api.domain.questionnaire.instruments import get_instrument

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# Local code systems live under a reserved domain (.invalid, RFC 2606): they name Interlude's own concepts and must
# never resolve to someone else's.
LOCAL_BASE = "https://interlude.invalid/fhir"
DIARY_SYSTEM = f"{LOCAL_BASE}/CodeSystem/diary"
SIDE_EFFECT_SYSTEM = f"{LOCAL_BASE}/CodeSystem/side-effect"
BODY_REGION_SYSTEM = f"{LOCAL_BASE}/CodeSystem/body-region"
INSTRUMENT_SYSTEM = f"{LOCAL_BASE}/CodeSystem/instrument"
SESSION_SYSTEM = f"{LOCAL_BASE}/CodeSystem/session"
QUESTIONNAIRE_BASE = f"{LOCAL_BASE}/Questionnaire"

PAIN_SEVERITY = "72514-3"
SLEEP_DURATION = "93832-4"
KETAMINE_RXNORM = "6130"

# SNOMED CT codes confirmed by more than one source (research/domain.md §5.1); the others carry the local code only.
SIDE_EFFECT_SNOMED = {
    "NAUSEA": ("422587007", "Nausea"),
    "VOMITING": ("422400008", "Vomiting"),
    "DIZZINESS": ("404640003", "Dizziness"),
    "HEADACHE": ("25064002", "Headache"),
}


@dataclass(frozen=True)
class Answer:
    label: str
    loinc: str | None


@dataclass(frozen=True)
class InstrumentCodes:
    title: str
    loinc_total: str | None = None
    loinc_converted: str | None = None
    item_text: dict[str, str] = field(default_factory=dict)
    # {item id: {answer code: the option}}
    answers: dict[str, dict[int, Answer]] = field(default_factory=dict)

    def coding_of_total(self, instrument: str) -> dict[str, Any]:
        if self.loinc_total is not None:
            return {"system": LOINC, "code": self.loinc_total, "display": f"{self.title} total score"}
        return {"system": INSTRUMENT_SYSTEM, "code": f"{instrument}-score", "display": f"{self.title} score"}

    def coding_of_raw(self, instrument: str) -> dict[str, Any]:
        """The raw sum of a table-scored instrument: what LOINC calls its total score, when the definition names one."""
        if self.loinc_total is not None:
            return self.coding_of_total(instrument)
        return {"system": INSTRUMENT_SYSTEM, "code": f"{instrument}-raw-score", "display": f"{self.title} raw score"}

    def coding_of_converted(self, instrument: str) -> dict[str, Any]:
        display = f"{self.title} converted score"
        if self.loinc_converted is not None:
            return {"system": LOINC, "code": self.loinc_converted, "display": display}
        return {"system": INSTRUMENT_SYSTEM, "code": f"{instrument}-converted", "display": display}


def instrument_codes(instrument: str, version: str) -> InstrumentCodes:
    """The codes of the instrument version a response was pinned to, from the instrument registry."""
    try:
        defined = get_instrument(instrument, version)
    except BadInput:
        # A response to a definition no longer installed still exports: plain integer answers, no LOINC.
        return InstrumentCodes(title=instrument)
    return InstrumentCodes(
        title=defined.title,
        loinc_total=defined.loinc_total,
        loinc_converted=defined.loinc_converted,
        item_text={item.id: item.text for item in defined.items},
        answers={item.id: {o.code: Answer(o.label, o.loinc) for o in item.options} for item in defined.items},
    )
