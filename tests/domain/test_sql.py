"""The hand-written hot reads (api/domain/sql.py) give what the ORM gives, on both databases."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from tortoise import Tortoise, fields
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.connection import connections
from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError, ValidationError
from tortoise.transactions import in_transaction

from api.domain import audit
from api.domain.audit.models import AuditEvent
from api.domain.diary.models import DiaryEntry
from api.domain.diary.validation import SideEffectReport
from api.domain.diary.vocabulary import SideEffect
from api.domain.errors import NotFound
from api.domain.patient.access import reachable_patient
from api.domain.patient.models import Patient, PatientStatus
from api.domain.sql import Where, _fetch, _rows, insert, insert_new, instance, one_connection, select, select_values
from tests.conftest import Database, count_acquisitions, count_queries
from tests.factories import Factory, PatientUser
from tests.graphql import GraphQLClient


def test_values_become_numbered_placeholders_in_order() -> None:
    where = Where('"a" = {}', 1)
    where.add('("b" < {} OR ("b" = {} AND "c" < {}))', 2, 2, 3)
    where.add_in('"d"', [4, 5])
    where.add('"e" IS NULL')

    text = (
        '"a" = $1 AND ("b" < $2 OR ("b" = $3 AND "c" < $4)) AND "d" IN ($5, $6) AND "e" IS NULL'
        ' ORDER BY "b" DESC LIMIT $7'
    )
    assert where.sql('"b" DESC', 10) == (text, [1, 2, 2, 3, 4, 5, 10])
    # Asking again gives the same: the limit is not added to the conditions' values twice.
    assert where.sql('"b" DESC', 10) == (text, [1, 2, 2, 3, 4, 5, 10])
    assert where.params == [1, 2, 2, 3, 4, 5]


def test_a_condition_is_numbered_from_where_it_stands() -> None:
    # The numbered text is kept per condition and position: the same condition, later in another Where.
    first = Where('"a" = {} AND "b" = {}', 1, 2)
    later = Where('"c" = {}', 3)
    later.add('"a" = {} AND "b" = {}', 4, 5)
    assert first.sql(None, None) == ('"a" = $1 AND "b" = $2', [1, 2])
    assert later.sql(None, 6) == ('"c" = $1 AND "a" = $2 AND "b" = $3 LIMIT $4', [3, 4, 5, 6])


def test_an_empty_in_list_matches_nothing() -> None:
    where = Where('"a" = {}', 1)
    where.add_in('"d"', [])
    assert where.sql(None, None) == ('"a" = $1 AND 1 = 0', [1])


async def test_rows_are_the_models_the_orm_reads(db: Database, factory: Factory, now: datetime) -> None:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic)
    for hours in (3, 2, 1):
        await factory.entry(alice, recorded_at=now - timedelta(hours=hours), note=f"{hours} h ago", sleep_hours=7.25)

    newest = Where('"patient_id" = {}', alice.patient.id)
    newest.add('"recorded_at" < {}', now - timedelta(minutes=90))
    rows = await select(DiaryEntry, newest, order_by='"recorded_at" DESC, "id" DESC', limit=5)
    expected = await DiaryEntry.filter(
        patient_id=alice.patient.id, recorded_at__lt=now - timedelta(minutes=90)
    ).order_by("-recorded_at", "-id")

    assert [r.id for r in rows] == [e.id for e in expected]
    assert [(r.recorded_at, r.note, r.sleep_hours, r.side_effects) for r in rows] == [
        (e.recorded_at, e.note, e.sleep_hours, e.side_effects) for e in expected
    ]
    assert rows[0].recorded_at.tzinfo is not None
    patients = await select(Patient, Where('"id" = {} AND "clinic_id" = {}', alice.patient.id, clinic.id))
    assert [(p.id, p.status, p.timezone) for p in patients] == [
        (alice.patient.id, alice.patient.status, alice.patient.timezone)
    ]
    assert await select(Patient, Where('"id" = {}', uuid4())) == []


async def test_a_patient_the_request_already_read_is_judged_again_not_read_again(
    db: Database, factory: Factory, now: datetime
) -> None:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic)
    staff = await factory.staff(clinic)
    stranger = await factory.staff(await factory.clinic())

    with count_queries() as counter:
        assert await reachable_patient(staff.actor, alice.patient.id, known=alice.patient) is alice.patient
    assert counter.statements == []
    # Another clinic's staff holding the row learn nothing from it: read, not found.
    with pytest.raises(NotFound):
        await reachable_patient(stranger.actor, alice.patient.id, known=alice.patient)
    # An erased patient without a hold is gone, whoever passes the row in.
    gone = await Patient.get(id=alice.patient.id)
    gone.status, gone.erased_at = PatientStatus.ERASED, now
    with pytest.raises(NotFound):
        await reachable_patient(staff.actor, alice.patient.id, known=gone)
    with pytest.raises(NotFound):
        await reachable_patient(alice.actor, alice.patient.id, known=gone)


async def test_a_patients_diary_under_patient_reads_the_patient_once(
    db: Database, factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic)
    staff = await factory.staff(clinic)
    await factory.entry(alice, recorded_at=now - timedelta(hours=1))
    document = "query($id: ID!) { patient(id: $id) { id diary(first: 100) { edges { node { id } } } } }"

    with count_queries() as counter:
        result = await gql(document, {"id": str(alice.patient.id)}, actor=staff.actor)

    assert len(result.ok()["patient"]["diary"]["edges"]) == 1
    # The patient, the audit event and its subject, the page.
    assert counter.statements == ["SELECT", "INSERT", "INSERT", "SELECT"]


async def test_an_instance_is_what_tortoise_makes_of_the_row(db: Database, factory: Factory, now: datetime) -> None:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic)
    nausea = [SideEffectReport(SideEffect.NAUSEA, 2)]
    await factory.entry(alice, recorded_at=now - timedelta(hours=2), sleep_hours=7.25, side_effects=nausea)
    await factory.entry(alice, recorded_at=now - timedelta(hours=1), note="a note", pain_locations=["LOWER_BACK"])
    await audit.record(alice.actor, "diary.read", [alice.patient.id], now=now)
    for model, where in (
        (Patient, Where('"id" = {}', alice.patient.id)),
        (DiaryEntry, Where('"patient_id" = {}', alice.patient.id)),
        (AuditEvent, Where('"clinic_id" = {}', clinic.id)),
    ):
        rows = await _rows(model._meta.db, model, where, order_by=None, limit=None, lock=None)
        assert rows
        for row in rows:
            made, tortoises = instance(model, row), model._init_from_db(**row)
            assert type(made) is model
            # By repr too: an instant's zone, a decimal's places, a UUID against its text.
            assert {k: repr(v) for k, v in vars(made).items()} == {k: repr(v) for k, v in vars(tortoises).items()}
            assert vars(made) == vars(tortoises)
            assert (made._saved_in_db, made._partial) == (True, False)


async def test_no_model_class_has_a_descriptor_under_a_column_fields_name(db: Database) -> None:
    # `instance` stores values straight into an instance's dictionary, where `object.__setattr__` would call a
    # data descriptor of the class instead.
    found = [
        f"{model.__name__}.{name}"
        for model in Tortoise.apps.get_models_iterable()
        for name in model._meta.fields_db_projection
        if hasattr(type(inspect.getattr_static(model, name, None)), "__set__")
    ]
    assert found == []
    assert hasattr(type(inspect.getattr_static(DiaryEntry, "patient")), "__set__")  # a relation's property is one


async def test_an_instance_of_a_row_without_some_columns_is_tortoises_partial_one(
    db: Database, factory: Factory
) -> None:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic)
    # As the driver gives it (asyncpg's Record, sqlite3's Row: each raises its own error for a missing column), and
    # as a dictionary.
    sql = 'SELECT "id", "clinic_id", "status" FROM "patient" WHERE "id" = $1'
    row = (await _fetch(Patient._meta.db, sql, [alice.patient.id]))[0]
    for partial in (row, dict(row)):
        made = instance(Patient, partial)
        assert made._partial is True
        assert vars(made) == vars(Patient._init_from_db(**partial))
        assert (made.id, made.clinic_id) == (alice.patient.id, clinic.id)


async def test_inserted_rows_read_back_as_the_orm_wrote_them(db: Database, factory: Factory, now: datetime) -> None:
    clinic = await factory.clinic()
    rows = [
        {
            "id": uuid4(),
            "clinic_id": clinic.id,
            "actor_id": None,
            "actor_role": "CLINICIAN",
            "action": f"test.{n}",
            "patient_id": uuid4() if n else None,
            "object_id": None,
            "operation": "patient",
            "request_id": None,
            "ip": "203.0.113.7",
            "created_at": now - timedelta(microseconds=n),
        }
        for n in range(3)
    ]
    with count_queries() as counter:
        await insert(AuditEvent, rows)
    assert counter.statements == ["INSERT"]

    stored = {e.id: e for e in await AuditEvent.filter(clinic_id=clinic.id)}
    for row in rows:
        event = stored[row["id"]]  # type: ignore[index]
        assert {name: getattr(event, name) for name in row} == row
    # Instants compare as the ORM's own writes do (SQLite compares them as text).
    assert await AuditEvent.filter(clinic_id=clinic.id, created_at__lt=now).count() == 2


def _row(who: PatientUser, now: datetime, **values: object) -> dict[str, object]:
    required = {
        "clinic_id": who.patient.clinic_id,
        "patient_id": who.patient.id,
        "client_id": uuid4(),
        "client_hash": "h" * 64,
        "recorded_at": now - timedelta(hours=1),
        "utc_offset_minutes": -300,
        "created_at": now,
        "updated_at": now,
    }
    return {**required, **values}


async def test_an_inserted_row_reads_back_as_the_orm_writes_it(db: Database, factory: Factory, now: datetime) -> None:
    alice = await factory.patient(await factory.clinic())
    values = {
        "pain_now": 3,
        "pain_locations": ["HEAD", "NECK"],
        "sleep_hours": Decimal("7.25"),
        "side_effects": [{"code": "NAUSEA", "severity": 2}],
        "rescue_medication": False,
        "note": 'a note\'s "quotes"',
        "prompt_id": uuid4(),
    }
    ours, theirs = _row(alice, now, **values), DiaryEntry(**_row(alice, now, **values))
    async with in_transaction() as conn:
        with count_queries() as counter:
            inserted = await insert_new(DiaryEntry, ours, unique=("patient_id", "client_id"), using_db=conn)
        await theirs.save(using_db=conn)
    assert counter.statements == ["INSERT"]
    assert inserted is not None
    assert inserted._saved_in_db

    names = [n for n in DiaryEntry._meta.fields_db_projection if n not in ("id", "client_id")]
    stored, written = await DiaryEntry.get(id=inserted.id), await DiaryEntry.get(id=theirs.id)
    assert {n: getattr(stored, n) for n in names} == {n: getattr(written, n) for n in names}
    assert (stored.client_id, stored.version, stored.deleted_at) == (ours["client_id"], 1, None)
    # The instance returned holds what `Model.__init__` makes of the same values, defaults included (id aside), and
    # what a read gives back: compared by repr, so that a zone or a decimal's places would differ too.
    made = DiaryEntry(**{**ours, "id": inserted.id})
    everything = list(DiaryEntry._meta.fields_db_projection)
    assert {n: repr(getattr(inserted, n)) for n in everything} == {n: repr(getattr(made, n)) for n in everything}
    assert {n: repr(getattr(inserted, n)) for n in everything} == {n: repr(getattr(stored, n)) for n in everything}
    instant = now - timedelta(hours=1)
    assert await DiaryEntry.filter(id=inserted.id, recorded_at__gt=instant - timedelta(seconds=1)).count() == 1
    assert await DiaryEntry.filter(id=inserted.id, recorded_at__lt=instant + timedelta(seconds=1)).count() == 1


async def test_an_instant_given_at_an_offset_is_stored_in_utc(db: Database, factory: Factory, now: datetime) -> None:
    alice = await factory.patient(await factory.clinic())
    at_offset = (now - timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5)))
    async with in_transaction() as conn:
        inserted = await insert_new(
            DiaryEntry, _row(alice, now, recorded_at=at_offset), unique=("patient_id", "client_id"), using_db=conn
        )
    assert inserted is not None
    assert inserted.recorded_at == at_offset
    assert inserted.recorded_at.utcoffset() == timedelta(0)
    # SQLite compares instants as text: only a UTC one is found by a range in UTC.
    instant = now - timedelta(hours=1)
    assert await DiaryEntry.filter(id=inserted.id, recorded_at__gte=instant, recorded_at__lte=instant).count() == 1


async def test_a_row_whose_unique_key_is_stored_is_not_inserted(db: Database, factory: Factory, now: datetime) -> None:
    alice = await factory.patient(await factory.clinic())
    first = _row(alice, now, note="first")
    again = _row(alice, now, note="again", client_id=first["client_id"])
    async with in_transaction() as conn:
        stored = await insert_new(DiaryEntry, first, unique=("patient_id", "client_id"), using_db=conn)
        assert stored is not None
        assert await insert_new(DiaryEntry, again, unique=("patient_id", "client_id"), using_db=conn) is None
        # The transaction goes on: nothing failed in it.
        assert await DiaryEntry.filter(patient_id=alice.patient.id).using_db(conn).count() == 1
    assert [(e.id, e.note) for e in await DiaryEntry.filter(patient_id=alice.patient.id)] == [(stored.id, "first")]


async def test_a_row_is_checked_as_the_orm_checks_it(db: Database, factory: Factory, now: datetime) -> None:
    alice = await factory.patient(await factory.clinic())
    with pytest.raises(ValidationError):
        async with in_transaction() as conn:
            await insert_new(
                DiaryEntry, _row(alice, now, client_hash="h" * 65), unique=("patient_id", "client_id"), using_db=conn
            )
    with pytest.raises(ValueError, match="no column fields \\['mood_score'\\]"):
        async with in_transaction() as conn:
            await insert_new(
                DiaryEntry, _row(alice, now, mood_score=3), unique=("patient_id", "client_id"), using_db=conn
            )
    assert await DiaryEntry.filter(patient_id=alice.patient.id).count() == 0


async def _made_later() -> str:  # an asynchronous default, which `Model.save` awaits
    return "later"


@pytest.mark.parametrize(
    "filled",
    [
        {"generated_db_fields": ("id",)},
        {"db_default_db_columns": ("version",)},
        {"fields_map": {"created_at": fields.DatetimeField(auto_now_add=True)}},
        {"fields_map": {"updated_at": fields.DatetimeField(auto_now=True)}},
        {"fields_map": {"token": fields.CharField(max_length=8, default=_made_later)}},
    ],
)
async def test_a_model_whose_columns_are_filled_in_for_it_is_refused(filled: dict[str, object]) -> None:
    class Counted:  # what insert_new reads of a model: its metadata (Tortoise's own models here fill in nothing)
        _meta = SimpleNamespace(**{"generated_db_fields": (), "db_default_db_columns": (), "fields_map": {}, **filled})

    with pytest.raises(TypeError, match="fills in: insert it through the ORM"):
        await insert_new(Counted, {}, unique=("id",), using_db=None)  # type: ignore[arg-type,type-var]


async def test_a_model_that_names_a_column_apart_from_its_field_is_refused() -> None:
    class Renamed:  # what insert_new reads of a model: its metadata (Tortoise's own models here name none apart)
        _meta = SimpleNamespace(
            generated_db_fields=(),
            db_default_db_columns=(),
            fields_map={},
            fields_db_projection={"id": "id", "score": "pain_score"},
        )

    with pytest.raises(TypeError, match="names a column apart from its field"):
        await insert_new(Renamed, {}, unique=("id",), using_db=None)  # type: ignore[arg-type,type-var]


async def test_a_failing_statement_raises_what_the_orm_raises(db: Database, factory: Factory, now: datetime) -> None:
    """On PostgreSQL the statements go to asyncpg without Tortoise's `execute_query`, but its errors are still
    Tortoise's (callers catch `IntegrityError`); on SQLite they go through Tortoise's."""
    clinic = await factory.clinic()
    alice = await factory.patient(clinic)
    event = {
        "id": uuid4(),
        "clinic_id": clinic.id,
        "actor_role": "CLINICIAN",
        "action": "test.twice",
        "operation": "patient",
        "created_at": now,
    }
    await insert(AuditEvent, [event])
    with pytest.raises(IntegrityError):
        await insert(AuditEvent, [event])
    with pytest.raises(OperationalError):
        await select(Patient, Where("no_such_column = {}", 1))  # unquoted: SQLite reads a quoted unknown as text
    first = _row(alice, now, id=uuid4())
    async with in_transaction() as conn:
        assert await insert_new(DiaryEntry, first, unique=("patient_id", "client_id"), using_db=conn) is not None
    with pytest.raises(IntegrityError):  # the same id, under another clientId: not the conflict it skips
        async with in_transaction() as conn:
            await insert_new(
                DiaryEntry, {**_row(alice, now), "id": first["id"]}, unique=("patient_id", "client_id"), using_db=conn
            )
    assert await AuditEvent.filter(action="test.twice").count() == 1
    assert await DiaryEntry.filter(patient_id=alice.patient.id).count() == 1


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_postgres_data_and_transaction_errors_are_the_orms(db: Database, factory: Factory, now: datetime) -> None:
    assert db.backend == "postgres"
    alice = await factory.patient(await factory.clinic())
    with pytest.raises(OperationalError):  # asyncpg's DataError: not a UUID
        await select(Patient, Where('"id" = {}', "not-a-uuid"))
    async with in_transaction() as conn:
        with pytest.raises(OperationalError):
            await select(Patient, Where("no_such_column = {}", 1), using_db=conn)
        # PostgreSQL refuses every statement after a failed one, until the transaction ends.
        with pytest.raises(TransactionManagementError):
            await select(Patient, Where('"id" = {}', alice.patient.id), using_db=conn)


class _Failing(AsyncpgDBClient):
    """A client whose connection fails every statement with `error`; nothing else of a client is used."""

    def __init__(self, error: Exception) -> None:  # no pool, no connection
        self.error = error
        self.log = logging.getLogger("tests.sql")

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        async def fetch(*_: object) -> None:
            raise self.error

        yield SimpleNamespace(fetch=fetch)

    def acquire_connection(self) -> Any:
        return self._connection()


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UndefinedColumnError("x"),
        asyncpg.exceptions.DataError("x"),
        asyncpg.exceptions.InvalidTextRepresentationError("x"),
        asyncpg.exceptions.UniqueViolationError("x"),
        asyncpg.exceptions.ForeignKeyViolationError("x"),
        asyncpg.exceptions.InFailedSQLTransactionError("x"),
        asyncpg.exceptions.QueryCanceledError("x"),
        asyncpg.exceptions.ConnectionDoesNotExistError("x"),
        OSError("x"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_driver_errors_are_translated_by_tortoises_table(error: Exception) -> None:
    """The translation is a copy of Tortoise's asyncpg client's: checked against it, for a Tortoise upgrade."""
    client = _Failing(error)

    async def theirs(self: AsyncpgDBClient) -> None:
        async with self.acquire_connection() as connection:
            await connection.fetch("SELECT 1")

    with pytest.raises(Exception) as expected:  # noqa: PT011 -- whatever Tortoise raises
        await AsyncpgDBClient._translate_exceptions(client, theirs)
    with pytest.raises(Exception) as raised:  # noqa: PT011 -- compared with it below
        await select(Patient, Where('"id" = {}', 1), using_db=client)
    assert type(raised.value) is type(expected.value)
    assert raised.value is error or raised.value.__cause__ is error


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_one_connection_takes_one_pooled_connection_for_its_statements(
    db: Database, factory: Factory, now: datetime
) -> None:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic)
    pool = connections.get("default")._pool
    event = {"id": uuid4(), "clinic_id": clinic.id, "actor_role": "CLINICIAN", "action": "test.one", "created_at": now}
    with count_acquisitions() as taken, count_queries() as counter:
        async with one_connection(Patient._meta.db) as conn:
            (patient,) = await select(Patient, Where('"id" = {}', alice.patient.id), using_db=conn)
            assert await select_values(DiaryEntry, Where('"patient_id" = {}', patient.id), using_db=conn) == []
            await insert(AuditEvent, [event], using_db=conn)
            # Each statement commits on its own: another connection sees the event before the block ends.
            assert await AuditEvent.filter(action="test.one").count() == 1
    assert counter.statements == ["SELECT", "SELECT", "INSERT", "SELECT"]
    assert len(taken) == 2  # the block's, and the count's from outside it
    assert pool.get_idle_size() == pool.get_size()  # every connection back in the pool


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_one_connection_is_given_back_after_a_failure(db: Database, factory: Factory) -> None:
    async def refused() -> None:
        async with one_connection(Patient._meta.db) as conn:
            assert await select(Patient, Where('"id" = {}', uuid4()), using_db=conn) == []
            raise NotFound("patient")

    with pytest.raises(OperationalError):
        async with one_connection(Patient._meta.db) as conn:
            await select(Patient, Where("no_such_column = {}", 1), using_db=conn)
    with pytest.raises(NotFound):
        await refused()
    # Read once a statement has run: a fresh database context opens its pool on first use (run alone, it had not).
    pool = connections.get("default")._pool
    assert pool.get_idle_size() == pool.get_size()
    assert await Patient.all().count() == 0  # the connection given back still works


async def test_one_connection_leaves_a_transaction_and_sqlite_as_they_are(db: Database) -> None:
    async with in_transaction() as transaction, one_connection(Patient._meta.db) as conn:
        assert conn is transaction
    client = Patient._meta.db
    async with one_connection(client) as conn:
        assert (conn is client) == (db.backend == "sqlite")


async def test_values_are_what_the_model_instances_hold(db: Database, factory: Factory, now: datetime) -> None:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic)
    await factory.entry(alice, recorded_at=now - timedelta(hours=2), pain_locations=["HEAD", "NECK"], sleep_hours=6.25)
    await factory.entry(
        alice,
        recorded_at=now - timedelta(hours=1),
        side_effects=[{"code": "NAUSEA", "severity": 2}],
        mood=None,
        rescue_medication=True,
    )
    where = Where('"patient_id" = {}', alice.patient.id)

    values = await select_values(DiaryEntry, where, order_by='"recorded_at" DESC, "id" DESC')
    models = await select(DiaryEntry, where, order_by='"recorded_at" DESC, "id" DESC')

    names = list(DiaryEntry._meta.fields_db_projection)
    assert [tuple(v) for v in values] == [tuple(getattr(m, n) for n in names) for m in models]
    assert values[0].side_effects == [{"code": "NAUSEA", "severity": 2}]
    assert values[1].pain_locations == ["HEAD", "NECK"]


async def test_values_of_some_fields_leave_the_others_unread(db: Database, factory: Factory, now: datetime) -> None:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic)
    await factory.entry(alice, pain_locations=["HEAD"], side_effects=[{"code": "NAUSEA", "severity": 1}], note="n")
    where = Where('"patient_id" = {}', alice.patient.id)
    [whole] = await select_values(DiaryEntry, where)

    [some] = await select_values(DiaryEntry, where, fields=frozenset({"id", "note", "side_effects"}))

    read = {"id", "note", "side_effects"}
    assert {n: getattr(some, n) for n in read} == {n: getattr(whole, n) for n in read}
    assert all(getattr(some, n) is None for n in some._fields if n not in read)
    assert all(getattr(whole, n) is not None for n in ("pain_locations", "recorded_at", "client_hash", "version"))


async def test_values_of_fields_without_json_are_the_rows_as_they_are(
    db: Database, factory: Factory, now: datetime
) -> None:
    # No JSON column selected, nothing to decode: the row's values go into the named tuple as they come.
    clinic = await factory.clinic()
    alice = await factory.patient(clinic)
    await factory.entry(alice, recorded_at=now - timedelta(hours=2), pain_locations=["HEAD"], sleep_hours=6.25)
    await factory.entry(alice, recorded_at=now - timedelta(hours=1), note="n", mood=7)
    where = Where('"patient_id" = {}', alice.patient.id)
    order = '"recorded_at" DESC, "id" DESC'
    whole = await select_values(DiaryEntry, where, order_by=order)

    read = {"id", "recorded_at", "utc_offset_minutes", "sleep_hours", "mood", "note", "created_at"}
    some = await select_values(DiaryEntry, where, order_by=order, fields=frozenset(read))

    assert [type(v) for v in some] == [type(v) for v in whole]
    assert [{n: getattr(v, n) for n in read} for v in some] == [{n: getattr(v, n) for n in read} for v in whole]
    assert [(v.pain_locations, v.side_effects, v.client_hash) for v in some] == [(None, None, None)] * 2


async def test_values_of_a_field_the_model_lacks_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="no column fields"):
        await select_values(DiaryEntry, Where('"note" = {}', "x"), fields=frozenset({"note", "nothing"}))


async def test_an_operation_name_longer_than_its_column_is_recorded_cut(
    db: Database, factory: Factory, now: datetime
) -> None:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic)
    staff = await factory.staff(clinic)
    staff.actor.meta.operation = "Q" * 150  # the client chose it

    await audit.record(staff.actor, "patient.read", [alice.patient.id], now=now)

    event = await AuditEvent.get(actor_id=staff.account.id, action="patient.read")
    assert event.operation == "Q" * 100
