"""Instrument definitions as data: loading, checking and looking them up by id and version.

The built-in definitions live next to this module in `instruments/`; a deployment adds its own (a BPI the clinic
holds a licence for, say) as JSON files in `INTERLUDE_INSTRUMENTS_DIR`, with no code change. The directory serves the
whole deployment, so a definition that needs a licence names the clinics holding it, and only they see and use it.
A file that does not follow the format is refused at start-up with its name and the key at fault, never half-used.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from api.domain.errors import BadInput

BUILT_IN_DIR = Path(__file__).with_name("instruments")
# The response table's columns bound these: instrument CharField(32), instrument_version (16), band (32).
MAX_ID, MAX_VERSION, MAX_BAND = 32, 16, 32
MIN_SCORE, MAX_SCORE = -32768, 32767  # SmallIntField
ID = re.compile(r"[a-z][a-z0-9_]*", re.ASCII)
VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*", re.ASCII)
LOINC = re.compile(r"[0-9]{1,7}-[0-9]", re.ASCII)
LOINC_ANSWER = re.compile(r"LA[0-9]{1,7}-[0-9]", re.ASCII)
RAW_SUM = re.compile(r"-?[0-9]+", re.ASCII)
E = TypeVar("E", bound=StrEnum)
# The crisis message and the self-harm alert hang on these: a PHQ-9 definition must keep them (check_whole).
PHQ9, PHQ9_ITEM9, SELF_HARM = "phq9", "phq9_9", "self_harm"


class DefinitionError(ValueError):
    """A definition file that cannot be used; the message names the file and the key."""


class AnsweredBy(StrEnum):
    QUESTIONNAIRE = "questionnaire"  # submitQuestionnaire
    DIARY = "diary"  # logDiaryEntry; the definition describes the diary fields the check-in collects


class ItemKind(StrEnum):
    CHOICE = "choice"  # one of the integer-coded options
    NUMBER = "number"
    BOOLEAN = "boolean"
    TEXT = "text"
    LIST = "list"  # several values from a closed vocabulary (the diary's body regions)


class Method(StrEnum):
    SUM = "sum"
    MEAN = "mean"
    ANSWER = "answer"  # the score is one item's code and the band its option's label (PGIC)
    NONE = "none"


@dataclass(frozen=True)
class Option:
    code: int
    label: str
    loinc: str | None = None


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    loinc: str | None
    options: tuple[Option, ...]
    required: bool = True
    scored: bool = True
    kind: ItemKind = ItemKind.CHOICE
    snomed: str | None = None
    # Diary-answered instruments: the DiaryEntry field the item is stored in ("side_effects.NAUSEA" for one effect).
    field: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None

    def option(self, code: int) -> Option | None:
        return next((o for o in self.options if o.code == code), None)


@dataclass(frozen=True)
class Scale:
    """How a score (or a subscale) is computed from item codes."""

    method: Method
    items: tuple[str, ...] = ()
    # MEAN only: fewer answered items than this cannot be scored (BPI interference: 4 of 7).
    min_answered: int = 0
    # SUM only, optional: the published conversion of each raw sum (PROMIS short forms: raw score → T-score), as
    # (raw sum, converted score) pairs in order of the raw sum. Pairs rather than a dict keep the definition hashable.
    table: tuple[tuple[int, float], ...] | None = None
    _converted: dict[int, float] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._converted.update(self.table or ())

    def converted(self, raw: int) -> float:
        """The table's score for a raw sum (the parser checked that the table covers every sum the items give)."""
        return self._converted[raw]


@dataclass(frozen=True)
class Subscale:
    id: str
    scale: Scale


@dataclass(frozen=True)
class Band:
    min: float
    label: str


@dataclass(frozen=True)
class Flag:
    """Raised when one item's code is at least `min`, e.g. PHQ-9 item 9 ≥ 1 → self_harm."""

    item: str
    min: int
    flag: str


@dataclass(frozen=True)
class Instrument:
    id: str
    version: str
    title: str
    licence_free: bool
    licence_note: str
    answered_by: AnsweredBy
    recall_period: str | None
    recall_days: int | None
    loinc_panel: str | None
    loinc_total: str | None
    preamble: str | None
    items: tuple[Item, ...]
    scoring: Scale
    subscales: tuple[Subscale, ...] = ()
    bands: tuple[Band, ...] = ()
    flags: tuple[Flag, ...] = ()
    # Licensed definitions only: the clinics that hold the licence.
    clinics: frozenset[UUID] = frozenset()
    source: str = ""
    # A table-scored instrument only: the LOINC code of the converted score (a PROMIS T-score), exported beside the
    # raw sum, which `loinc_total` names.
    loinc_converted: str | None = None
    _by_id: dict[str, Item] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update((i.id, i) for i in self.items)

    def item(self, item_id: str) -> Item | None:
        return self._by_id.get(item_id)

    def usable_by(self, clinic_id: UUID) -> bool:
        return self.licence_free or clinic_id in self.clinics

    def band_for(self, score: float) -> str | None:
        label = None
        for band in self.bands:
            if score >= band.min:
                label = band.label
        return label


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


class Registry:
    """Every loaded definition by id and version; the highest version of an id is its current one."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._versions: dict[str, dict[str, Instrument]] = {}
        for instrument in instruments:
            versions = self._versions.setdefault(instrument.id, {})
            if instrument.version in versions:
                other = versions[instrument.version].source
                raise DefinitionError(
                    f"{instrument.source}: {instrument.id} version {instrument.version} is already defined in {other}"
                )
            versions[instrument.version] = instrument

    @classmethod
    def load(cls, extra_dir: Path | None = None) -> Registry:
        built_in = _built_in(BUILT_IN_DIR)
        return cls([*built_in, *load_dir(extra_dir)] if extra_dir is not None else built_in)

    def get(self, instrument_id: str, version: str | None = None) -> Instrument:
        """Any clinic's definition: for reading responses already stored, never for offering one to a clinic."""
        return _pick(instrument_id, self._versions.get(instrument_id, {}), version, "instrument")

    def for_clinic(
        self, clinic_id: UUID, instrument_id: str, version: str | None = None, *, version_field: str = "instrument"
    ) -> Instrument:
        """A definition the clinic may use; one licensed to other clinics is refused as if it did not exist."""
        return _pick(instrument_id, self._usable(clinic_id, instrument_id), version, version_field)

    def current(self, clinic_id: UUID) -> list[Instrument]:
        """The current version of every instrument the clinic may use, by id."""
        return [
            versions[max(versions, key=version_key)]
            for instrument_id in sorted(self._versions)
            if (versions := self._usable(clinic_id, instrument_id))
        ]

    def _usable(self, clinic_id: UUID, instrument_id: str) -> dict[str, Instrument]:
        versions = self._versions.get(instrument_id, {})
        return {version: i for version, i in versions.items() if i.usable_by(clinic_id)}


def _pick(
    instrument_id: str, versions: Mapping[str, Instrument], version: str | None, version_field: str
) -> Instrument:
    if not versions:
        raise BadInput("instrument", f"there is no instrument {instrument_id!r}")
    if version is None:
        return versions[max(versions, key=version_key)]
    if version not in versions:
        raise BadInput(version_field, f"{instrument_id} has no version {version!r}")
    return versions[version]


_installed: Registry | None = None


def install(registry: Registry) -> None:
    """Makes `registry` the one `get_instrument` answers from (the container installs the configured one)."""
    global _installed  # noqa: PLW0603 -- one registry per process, as settings are; set once at start-up
    _installed = registry


def installed() -> Registry:
    global _installed  # noqa: PLW0603 -- lazily the built-ins until the container installs its registry
    if _installed is None:
        _installed = Registry.load()
    return _installed


def get_instrument(instrument_id: str, version: str | None = None) -> Instrument:
    """An instrument by id, at `version` or its current one, whichever clinic holds it: for reading stored responses.

    BAD_USER_INPUT on `instrument` if there is none.
    """
    return installed().get(instrument_id, version)


@cache
def _built_in(directory: Path) -> tuple[Instrument, ...]:
    # Read once per process: every app and test client builds its services, and the files never change.
    built_in = tuple(load_file(path) for path in sorted(directory.glob("*.json")))
    for instrument in built_in:
        if not instrument.licence_free:
            raise DefinitionError(
                f"{instrument.source}: licence.free: a built-in instrument must be free to use; "
                "one that needs a licence is added by the clinic that holds it (INTERLUDE_INSTRUMENTS_DIR)"
            )
    return built_in


def load_dir(directory: Path) -> list[Instrument]:
    if not directory.is_dir():
        raise DefinitionError(f"{directory}: the instruments directory does not exist")
    return [load_file(path) for path in sorted(directory.glob("*.json"))]


def load_file(path: Path) -> Instrument:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    # ValueError: json.JSONDecodeError, and an integer literal beyond Python's 4300-digit conversion limit.
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DefinitionError(f"{path}: cannot be read as JSON: {exc}") from exc
    return parse(data, str(path))


def parse(data: object, source: str) -> Instrument:
    return _Parser(source).instrument(data)


_TOP_KEYS = {
    "id",
    "version",
    "title",
    "licence",
    "answered_by",
    "recall_period",
    "recall_days",
    "loinc_panel",
    "loinc_total",
    "loinc_converted",
    "preamble",
    "option_sets",
    "items",
    "scoring",
    "subscales",
    "bands",
    "flags",
}
_ITEM_KEYS = {
    "id",
    "text",
    "loinc",
    "snomed",
    "options",
    "required",
    "scored",
    "kind",
    "field",
    "minimum",
    "maximum",
    "unit",
}


class _Parser:
    """Reads one definition, naming `<file>: <key>` in every refusal."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> DefinitionError:
        return DefinitionError(f"{self.source}: {key}: {message}")

    def instrument(self, data: object) -> Instrument:
        top = self.mapping(data, "(top level)", _TOP_KEYS, required={"id", "version", "title", "licence", "items"})
        instrument_id = self.ident(top["id"], "id", MAX_ID)
        version = self.as_str(top["version"], "version")
        if not VERSION.fullmatch(version) or len(version) > MAX_VERSION:
            raise self.fail("version", f"must be dotted numbers such as '1' or '2.1', at most {MAX_VERSION} characters")
        answered_by = self.choice(top.get("answered_by", AnsweredBy.QUESTIONNAIRE.value), "answered_by", AnsweredBy)
        option_sets = self.option_sets(top.get("option_sets", {}))
        items = self.items(top["items"], option_sets, answered_by)
        scoring = self.scale(top.get("scoring", {"method": "none"}), "scoring", items, main=True)
        instrument = Instrument(
            id=instrument_id,
            version=version,
            title=self.as_str(top["title"], "title"),
            **self.licence(top["licence"]),
            answered_by=answered_by,
            recall_period=self.optional_string(top.get("recall_period"), "recall_period"),
            recall_days=self.optional_int(top.get("recall_days"), "recall_days", minimum=1),
            loinc_panel=self.loinc(top.get("loinc_panel"), "loinc_panel"),
            loinc_total=self.loinc(top.get("loinc_total"), "loinc_total"),
            preamble=self.optional_string(top.get("preamble"), "preamble"),
            items=items,
            scoring=scoring,
            subscales=self.subscales(top.get("subscales", []), items),
            bands=self.bands(top.get("bands", []), scoring),
            flags=self.flags(top.get("flags", []), items),
            source=self.source,
            loinc_converted=self.loinc(top.get("loinc_converted"), "loinc_converted"),
        )
        self.check_whole(instrument)
        return instrument

    def licence(self, value: object) -> dict[str, Any]:
        licence = self.mapping(value, "licence", {"free", "note", "clinics"}, required={"free", "note"})
        free = self.as_bool(licence["free"], "licence.free")
        if free and "clinics" in licence:
            raise self.fail("licence.clinics", "a free instrument is every clinic's: name clinics only under a licence")
        if not free and "clinics" not in licence:
            # INTERLUDE_INSTRUMENTS_DIR serves every clinic of the deployment, not only the one holding the licence.
            raise self.fail("licence.clinics", "an instrument that needs a licence names the clinics that hold it")
        return {
            "licence_free": free,
            "licence_note": self.as_str(licence["note"], "licence.note"),
            "clinics": frozenset() if free else self.clinics(licence["clinics"]),
        }

    def clinics(self, value: object) -> frozenset[UUID]:
        entries = self.as_list(value, "licence.clinics")
        if not entries:
            raise self.fail("licence.clinics", "must name at least one clinic")
        clinics = set()
        for i, entry in enumerate(entries):
            try:
                clinics.add(UUID(self.as_str(entry, f"licence.clinics[{i}]")))
            except ValueError as exc:
                raise self.fail(f"licence.clinics[{i}]", "must be a clinic id (a UUID)") from exc
        return frozenset(clinics)

    def option_sets(self, value: object) -> dict[str, tuple[Option, ...]]:
        if not isinstance(value, dict):
            raise self.fail("option_sets", "must be an object of named option lists")
        return {str(name): self.options(options, f"option_sets.{name}") for name, options in value.items()}

    def options(self, value: object, key: str) -> tuple[Option, ...]:
        entries = self.as_list(value, key)
        if not entries:
            raise self.fail(key, "must list at least one option")
        options = []
        for i, entry in enumerate(entries):
            where = f"{key}[{i}]"
            raw = self.mapping(entry, where, {"code", "label", "loinc"}, required={"code", "label"})
            loinc = self.optional_string(raw.get("loinc"), f"{where}.loinc")
            if loinc is not None and not LOINC_ANSWER.fullmatch(loinc):
                raise self.fail(f"{where}.loinc", "must be a LOINC answer code such as LA6568-5")
            code = self.as_int(raw["code"], f"{where}.code")
            options.append(Option(code=code, label=self.as_str(raw["label"], f"{where}.label"), loinc=loinc))
        codes = [o.code for o in options]
        if len(set(codes)) != len(codes):
            raise self.fail(key, "lists a code twice")
        return tuple(options)

    def items(
        self, value: object, option_sets: Mapping[str, tuple[Option, ...]], answered_by: AnsweredBy
    ) -> tuple[Item, ...]:
        entries = self.as_list(value, "items")
        if not entries:
            raise self.fail("items", "must list at least one item")
        items = tuple(self.item(entry, f"items[{i}]", option_sets, answered_by) for i, entry in enumerate(entries))
        ids = [item.id for item in items]
        for i, item_id in enumerate(ids):
            if item_id in ids[:i]:
                raise self.fail(f"items[{i}].id", f"{item_id!r} is used twice")
        return items

    def item(
        self, value: object, key: str, option_sets: Mapping[str, tuple[Option, ...]], answered_by: AnsweredBy
    ) -> Item:
        raw = self.mapping(value, key, _ITEM_KEYS, required={"id", "text"})
        kind = self.choice(raw.get("kind", ItemKind.CHOICE.value), f"{key}.kind", ItemKind)
        if answered_by is AnsweredBy.QUESTIONNAIRE and kind is not ItemKind.CHOICE:
            raise self.fail(f"{key}.kind", "a questionnaire's items are answered with an option code: use 'choice'")
        options: tuple[Option, ...] = ()
        if kind is ItemKind.CHOICE:
            named = raw.get("options")
            if isinstance(named, str):
                if named not in option_sets:
                    raise self.fail(f"{key}.options", f"names no option set {named!r}")
                options = option_sets[named]
            else:
                options = self.options(named, f"{key}.options")
        elif "options" in raw:
            raise self.fail(f"{key}.options", f"a {kind.value} item has no options")
        snomed = self.optional_string(raw.get("snomed"), f"{key}.snomed")
        if snomed is not None and not snomed.isdigit():
            raise self.fail(f"{key}.snomed", "must be a SNOMED CT concept id (digits)")
        return Item(
            id=self.ident(raw["id"], f"{key}.id", MAX_ID),
            text=self.as_str(raw["text"], f"{key}.text"),
            loinc=self.loinc(raw.get("loinc"), f"{key}.loinc"),
            options=options,
            required=self.as_bool(raw.get("required", True), f"{key}.required"),
            scored=self.as_bool(raw.get("scored", kind is ItemKind.CHOICE), f"{key}.scored"),
            kind=kind,
            snomed=snomed,
            field=self.optional_string(raw.get("field"), f"{key}.field"),
            minimum=self.optional_number(raw.get("minimum"), f"{key}.minimum"),
            maximum=self.optional_number(raw.get("maximum"), f"{key}.maximum"),
            unit=self.optional_string(raw.get("unit"), f"{key}.unit"),
        )

    def scale(self, value: object, key: str, items: Sequence[Item], *, main: bool) -> Scale:
        keys = {"method", "items", "min_answered", *({"item", "table"} if main else ())}
        raw = self.mapping(value, key, keys, required={"method"})
        method = self.choice(raw["method"], f"{key}.method", Method)
        by_id = {item.id: item for item in items}
        if method is Method.ANSWER:
            if not main:
                raise self.fail(f"{key}.method", "a subscale is a sum or a mean")
            return self.answer_scale(raw, key, by_id)
        if method is Method.NONE:
            return Scale(Method.NONE)
        scored = self.scored_items(raw, key, items, main=main)
        if method is Method.SUM:
            if "min_answered" in raw:
                raise self.fail(f"{key}.min_answered", "applies to a mean only: a sum needs every item")
            optional = [i for i in scored if not by_id[i].required]
            if optional and main:
                raise self.fail(f"{key}.items", f"a sum cannot include the optional item {optional[0]!r}")
            table = self.table(raw["table"], key, [by_id[i] for i in scored]) if "table" in raw else None
            return Scale(Method.SUM, scored, len(scored), table)
        if "table" in raw:
            raise self.fail(f"{key}.table", "converts a sum only")
        least = self.optional_int(raw.get("min_answered"), f"{key}.min_answered", minimum=1)
        if least is not None and least > len(scored):
            raise self.fail(f"{key}.min_answered", f"is more than the {len(scored)} items scored")
        return Scale(Method.MEAN, scored, least or len(scored))

    def table(self, value: object, key: str, scored: Sequence[Item]) -> tuple[tuple[int, float], ...]:
        """Every raw sum the items can give, mapped to its converted score: a gap would leave an answer unscored."""
        if not isinstance(value, dict):
            raise self.fail(f"{key}.table", "must be an object of raw sum → converted score")
        raw: dict[str, Any] = value
        lowest = sum(min(o.code for o in item.options) for item in scored)
        highest = sum(max(o.code for o in item.options) for item in scored)
        table: dict[int, float] = {}
        for text, converted in raw.items():
            where = f"{key}.table.{text}"
            # Strictly digits: int() would also take "+5", " 5" and "1_0", and "--5" got past a lstrip("-").
            if not RAW_SUM.fullmatch(text) or not lowest <= int(text) <= highest:
                raise self.fail(where, f"raw sums run from {lowest} to {highest}")
            table[int(text)] = self.number(converted, where)
            # The converted score is what the response stores, rounded as scoring rounds it; one far out is refused
            # unrounded (rounding 1e400 would overflow Decimal's precision).
            exact = Decimal(str(table[int(text)]))
            self.storable(exact.quantize(Decimal(1), ROUND_HALF_UP) if abs(exact) <= 2 * MAX_SCORE else exact, where)
        missing = [n for n in range(lowest, highest + 1) if n not in table]
        if missing:
            raise self.fail(f"{key}.table", f"has no converted score for the raw sum {missing[0]}")
        return tuple(sorted(table.items()))

    def storable(self, score: Decimal | int, key: str) -> None:
        if not MIN_SCORE <= score <= MAX_SCORE:
            raise self.fail(key, f"a score outside {MIN_SCORE}..{MAX_SCORE} cannot be stored")

    def answer_scale(self, raw: Mapping[str, Any], key: str, by_id: Mapping[str, Item]) -> Scale:
        item_id = self.as_str(raw.get("item"), f"{key}.item")
        item = by_id.get(item_id)
        if item is None or item.kind is not ItemKind.CHOICE or not item.required:
            raise self.fail(f"{key}.item", "must name a required choice item")
        if any(len(o.label) > MAX_BAND for o in item.options):
            raise self.fail(f"{key}.item", f"its option labels become bands: at most {MAX_BAND} characters")
        return Scale(Method.ANSWER, (item_id,))

    def scored_items(self, raw: Mapping[str, Any], key: str, items: Sequence[Item], *, main: bool) -> tuple[str, ...]:
        if "items" in raw:
            scored = tuple(self.as_str(v, f"{key}.items") for v in self.as_list(raw["items"], f"{key}.items"))
        elif main:
            scored = tuple(item.id for item in items if item.scored)
        else:
            raise self.fail(f"{key}.items", "a subscale lists its items")
        choices = {item.id for item in items if item.kind is ItemKind.CHOICE}
        for item_id in scored:
            if item_id not in choices:
                raise self.fail(f"{key}.items", f"{item_id!r} is not a choice item of this instrument")
        if not scored:
            raise self.fail(f"{key}.items", "a score needs at least one item")
        if len(set(scored)) != len(scored):
            raise self.fail(f"{key}.items", "lists an item twice")
        return scored

    def subscales(self, value: object, items: Sequence[Item]) -> tuple[Subscale, ...]:
        out = []
        for i, entry in enumerate(self.as_list(value, "subscales")):
            raw = self.mapping(entry, f"subscales[{i}]", {"id", "method", "items", "min_answered"}, required={"id"})
            sub_id = self.ident(raw["id"], f"subscales[{i}].id", MAX_ID)
            spec = {k: v for k, v in raw.items() if k != "id"}
            out.append(Subscale(sub_id, self.scale(spec, f"subscales[{i}]", items, main=False)))
        return tuple(out)

    def bands(self, value: object, scoring: Scale) -> tuple[Band, ...]:
        entries = self.as_list(value, "bands")
        if entries and scoring.method in (Method.ANSWER, Method.NONE):
            raise self.fail("bands", f"a '{scoring.method.value}' scoring has no bands")
        bands = []
        for i, entry in enumerate(entries):
            pair = self.as_list(entry, f"bands[{i}]")
            if len(pair) != 2:
                raise self.fail(f"bands[{i}]", "must be [minimum score, label]")
            label = self.as_str(pair[1], f"bands[{i}][1]")
            if len(label) > MAX_BAND:
                raise self.fail(f"bands[{i}][1]", f"at most {MAX_BAND} characters")
            bands.append(Band(self.number(pair[0], f"bands[{i}][0]"), label))
        for i in range(1, len(bands)):
            if bands[i].min <= bands[i - 1].min:
                raise self.fail(f"bands[{i}][0]", "bands must be in increasing order of their minimum")
        return tuple(bands)

    def flags(self, value: object, items: Sequence[Item]) -> tuple[Flag, ...]:
        by_id = {item.id: item for item in items}
        out = []
        for i, entry in enumerate(self.as_list(value, "flags")):
            where = f"flags[{i}]"
            raw = self.mapping(entry, where, {"item", "min", "flag"}, required={"item", "min", "flag"})
            item_id = self.as_str(raw["item"], f"{where}.item")
            if item_id not in by_id or by_id[item_id].kind is not ItemKind.CHOICE:
                raise self.fail(f"{where}.item", f"{item_id!r} is not a choice item of this instrument")
            out.append(
                Flag(item_id, self.as_int(raw["min"], f"{where}.min"), self.ident(raw["flag"], f"{where}.flag", MAX_ID))
            )
        return tuple(out)

    def check_whole(self, instrument: Instrument) -> None:
        # Flags and subscales share the response's `derived` object.
        names = [f.flag for f in instrument.flags] + [s.id for s in instrument.subscales]
        for name in names:
            if names.count(name) > 1 or name in ("score_exact", "raw_score"):
                raise self.fail("flags", f"{name!r} names two derived values")
        if instrument.answered_by is AnsweredBy.DIARY and instrument.scoring.method is not Method.NONE:
            raise self.fail("scoring", "a diary check-in is not scored here: use 'none'")
        scoring = instrument.scoring
        if scoring.method is not Method.NONE and scoring.table is None:
            # A table's scores were checked one by one (table()); otherwise the codes bound the score.
            codes = [[o.code for o in self._item(instrument, i).options] for i in scoring.items]
            if scoring.method is Method.SUM:
                self.storable(sum(map(min, codes)), "scoring")
                self.storable(sum(map(max, codes)), "scoring")
            else:
                # A mean, or one item's code, lies within the codes.
                self.storable(min(map(min, codes)), "scoring")
                self.storable(max(map(max, codes)), "scoring")
        if instrument.loinc_converted is not None and scoring.table is None:
            raise self.fail("loinc_converted", "names the score a scoring table converts to: this scoring has none")
        if instrument.scoring.method in (Method.SUM, Method.MEAN) and not instrument.bands:
            raise self.fail("bands", "a scored instrument lists its bands, lowest first")
        if instrument.id == PHQ9 and Flag(PHQ9_ITEM9, 1, SELF_HARM) not in instrument.flags:
            # Without it a self-harm answer brings no crisis message and no alert, and nothing says so.
            raise self.fail("flags", f"a {PHQ9} definition raises {SELF_HARM!r} from item {PHQ9_ITEM9!r} at min 1")

    @staticmethod
    def _item(instrument: Instrument, item_id: str) -> Item:
        item = instrument.item(item_id)
        assert item is not None  # noqa: S101 -- scale() checked every scored id
        return item

    # Primitive readers.

    def mapping(self, value: object, key: str, allowed: set[str], *, required: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, "must be an object")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(key, f"unknown key {unknown[0]!r}")
        missing = sorted(required - set(value))
        if missing:
            prefix = "" if key == "(top level)" else f"{key}."
            raise self.fail(f"{prefix}{missing[0]}", "is required")
        return value

    def as_list(self, value: object, key: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(key, "must be a list")
        return value

    def as_str(self, value: object, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "must be a non-empty string")
        return value

    def optional_string(self, value: object, key: str) -> str | None:
        return None if value is None else self.as_str(value, key)

    def ident(self, value: object, key: str, limit: int) -> str:
        text = self.as_str(value, key)
        if not ID.fullmatch(text) or len(text) > limit:
            raise self.fail(key, f"must be lower-case letters, digits and '_', at most {limit} characters")
        return text

    def as_int(self, value: object, key: str) -> int:
        # bool is an int in Python; `true` is not a code.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, "must be an integer")
        return value

    def optional_int(self, value: object, key: str, *, minimum: int) -> int | None:
        if value is None:
            return None
        number = self.as_int(value, key)
        if number < minimum:
            raise self.fail(key, f"must be at least {minimum}")
        return number

    def number(self, value: object, key: str) -> float:
        # json.loads takes NaN and Infinity, which no score compares with sensibly. An int is finite, however large
        # (math.isfinite would overflow on one beyond a float's range).
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.fail(key, "must be a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(key, "must be a finite number")
        return value

    def optional_number(self, value: object, key: str) -> float | None:
        return None if value is None else self.number(value, key)

    def as_bool(self, value: object, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def choice(self, value: object, key: str, kind: type[E]) -> E:
        allowed = [m.value for m in kind]
        if not isinstance(value, str) or value not in allowed:
            raise self.fail(key, f"must be one of {', '.join(map(repr, allowed))}")
        return kind(value)

    def loinc(self, value: object, key: str) -> str | None:
        code = self.optional_string(value, key)
        if code is not None and not (LOINC.fullmatch(code) and loinc_check_digit_ok(code)):
            raise self.fail(key, f"{code!r} is not a LOINC code (digits, '-', a valid check digit)")
        return code


def loinc_check_digit_ok(code: str) -> bool:
    """LOINC codes end in a mod-10 (Luhn) check digit: a mistyped code is refused, not exported."""
    body, check = code.split("-")
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return (10 - total % 10) % 10 == int(check)
