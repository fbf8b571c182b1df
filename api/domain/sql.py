"""Hand-written statements for the hottest reads, the diary entry's insert and the audit trail's writes, run on
Tortoise's own connections with its value conversion: on PostgreSQL sent to asyncpg directly (`_fetch`), on SQLite
through Tortoise's `execute_query`.

Building a query through the ORM costs more than running it: about 0.3 ms for a lookup by primary key and 1 ms for
a page of the diary, against 0.15 ms to send the same statement (bench/README.md). A request reads the patient and
a page of entries, so the few statements every request runs are written out here, once, with `$n` placeholders.
The rows still become model instances as `Model._init_from_db` makes them (`instance`), exactly as an ORM query's
do, so the values (instants, UUIDs, JSON, decimals) are what the rest of the code has always received on either
database.

Only constant text goes into a statement: identifiers come from the models' metadata, values are always parameters.
"""

from __future__ import annotations

import inspect
import re
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from copy import deepcopy
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, TypeVar, cast
from uuid import UUID

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError
from tortoise.fields import JSONField
from tortoise.models import Model

from api.domain.clock import require_aware

M = TypeVar("M", bound=Model)
_PLACEHOLDER = re.compile(r"\$\d+")
_PLACEHOLDER_NUMBER = re.compile(r"\$(\d+)")


@cache
def columns(model: type[Model]) -> str:
    """Every column of the model's table, as the ORM selects them."""
    return ", ".join(f'"{column}"' for column in model._meta.fields_db_projection.values())


@lru_cache(maxsize=256)  # keyed by what clients select: bounded
def _projection(model: type[Model], fields: frozenset[str] | None) -> str:
    """`columns(model)`, but a field not in `fields` read as `NULL AS "column"`: the row keeps the model's shape, and
    the database neither sends nor the driver decodes what nobody will read. `None`: every field."""
    if fields is None:
        return columns(model)
    _require_columns(model, fields)
    return ", ".join(
        f'"{column}"' if name in fields else f'NULL AS "{column}"'
        for name, column in model._meta.fields_db_projection.items()
    )


def _require_columns(model: type[Model], names: Iterable[str]) -> None:
    """ValueError unless each name is a field with a column of its own (a relation's is `<name>_id`)."""
    unknown = set(names) - model._meta.fields_db_projection.keys()
    if unknown:
        raise ValueError(f"{model.__name__} has no column fields {sorted(unknown)}")


@lru_cache(maxsize=512)  # the conditions are the code's own constant text: bounded
def _numbered(condition: str, start: int, count: int) -> str:
    """`condition` with its `{}` written as `$<start + 1>`, `$<start + 2>`, …: the same few conditions are numbered
    for every request, and formatting one cost as much as the rest of its `Where`."""
    return condition.format(*(f"${start + i + 1}" for i in range(count)))


class Where:
    """Conditions joined by AND, each written with `{}` where its values go; they become `$1`, `$2`, … in order."""

    def __init__(self, condition: str, *values: object) -> None:
        self.conditions: list[str] = []
        self.params: list[object] = []
        self.add(condition, *values)

    def add(self, condition: str, *values: object) -> None:
        self.conditions.append(_numbered(condition, len(self.params), len(values)))
        self.params.extend(values)

    def add_in(self, column: str, values: Sequence[object]) -> None:
        """`column IN (…)`; an empty list matches nothing."""
        if not values:
            self.conditions.append("1 = 0")
            return
        self.conditions.append(f"{column} IN ({', '.join(self._param(v) for v in values)})")

    def _param(self, value: object) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def sql(self, order_by: str | None, limit: int | None) -> tuple[str, list[object]]:
        """The condition with its ORDER BY and LIMIT, and the values in placeholder order (this object unchanged)."""
        text, params = " AND ".join(self.conditions), list(self.params)
        if order_by is not None:
            text += f" ORDER BY {order_by}"
        if limit is not None:
            params.append(limit)
            text += f" LIMIT ${len(params)}"
        return text, params


async def select(
    model: type[M],
    where: Where,
    *,
    order_by: str | None = None,
    limit: int | None = None,
    lock: str | None = None,
    using_db: BaseDBAsyncClient | None = None,
) -> list[M]:
    """`SELECT <all columns> FROM <table> WHERE … [ORDER BY …] [LIMIT …] [FOR <lock>]`, as model instances.

    `lock` ("NO KEY UPDATE", say) is PostgreSQL's: SQLite has no row locks and runs one write transaction at a
    time, as Tortoise's `select_for_update` is ignored there."""
    db = using_db or model._meta.db
    return [instance(model, row) for row in await _rows(db, model, where, order_by=order_by, limit=limit, lock=lock)]


def instance(model: type[M], row: Mapping[str, Any]) -> M:
    """`model._init_from_db(**row)`: the instance of a row read whole (by column name), its values converted by the
    same fields in the same way; a row that lacks a column is left to Tortoise's own partial fallback.

    Tortoise sets the instance's four markers (read from the database, not partial…) through the model's
    `__setattr__`, which for each asks `hasattr(self, "_await_when_save")` and so raises, and formats, an
    AttributeError four times an instance; the row is also copied into keyword arguments first. The patient's row
    and a new entry's made 8 such exceptions a diary write (bench/README.md, session 16). Here the markers and the
    values are stored without `__setattr__`; the field lists are read from the model's metadata at each call, as
    Tortoise reads them (they depend on the database the models were last initialised for)."""
    meta = model._meta
    made = model.__new__(model)
    # Straight into the instance's dictionary, as `object.__setattr__` would put them: a model's class has no data
    # descriptor under a column field's name (a relation's property is under the relation's own name).
    held = made.__dict__
    held["_partial"] = False
    held["_saved_in_db"] = True
    held["_custom_generated_pk"] = meta.db_pk_column not in meta.generated_db_fields
    held["_await_when_save"] = {}
    try:
        for key, attribute, _ in meta.db_native_fields:
            held[attribute] = row[key]
        for key, attribute, field in meta.db_default_fields:
            value = row[key]
            held[attribute] = value if value is None else field.field_type(value)
        for key, attribute, field in meta.db_complex_fields:
            held[attribute] = field.to_python_value(row[key])
    except LookupError:  # KeyError from a dict or asyncpg's Record, IndexError from sqlite3's Row
        return model._init_from_db(**row)
    return made


async def select_values(
    model: type[Model],
    where: Where,
    *,
    order_by: str | None = None,
    limit: int | None = None,
    fields: frozenset[str] | None = None,
    using_db: BaseDBAsyncClient | None = None,
) -> list[Any]:
    """As `select`, but each row a named tuple of the model's fields (`values_type`), for rows only read: a model
    instance costs about 25 µs to build (bench/orm.py), a page of 100 of them most of the page's time. On
    PostgreSQL the driver's values are already the ORM's (UUIDs, aware UTC instants, decimals), but for JSON,
    which it hands over as text; on SQLite every value goes through the ORM's own conversion.

    `fields`: the only fields the caller reads; the others are None in every row, unread (`None`: all of them)."""
    db = using_db or model._meta.db
    rows = await _rows(db, model, where, order_by=order_by, limit=limit, lock=None, fields=fields)
    kind = values_type(model)
    if db.capabilities.dialect != "postgres":
        names = kind._fields
        return [kind(*(getattr(m, n) for n in names)) for m in (instance(model, row) for row in rows)]
    json_columns = _json_columns(model, fields)
    if not json_columns:
        # The row's values as they are, with no list between: about half the per-row cost of the loop below.
        make = kind._make
        return [make(row.values()) for row in rows]
    out = []
    for row in rows:
        values = list(row.values())
        for i, decode in json_columns:
            if isinstance(values[i], str):
                values[i] = decode(values[i])
        out.append(kind(*values))
    return out


async def _rows(
    db: BaseDBAsyncClient,
    model: type[Model],
    where: Where,
    *,
    order_by: str | None,
    limit: int | None,
    lock: str | None,
    fields: frozenset[str] | None = None,
) -> list[Any]:
    condition, params = where.sql(order_by, limit)
    sql = f'SELECT {_projection(model, fields)} FROM "{model._meta.db_table}" WHERE {condition}'  # noqa: S608 -- see the module
    if lock is not None and db.capabilities.dialect == "postgres":
        sql += f" FOR {lock}"
    return await _fetch(db, sql, params)


@cache
def values_type(model: type[Model]) -> Any:
    """A named tuple of the model's fields, in `columns(model)` order."""
    return namedtuple(f"{model.__name__}Values", list(model._meta.fields_db_projection))


@lru_cache(maxsize=256)  # keyed by what clients select, as `_projection`: bounded
def _json_columns(
    model: type[Model], selected: frozenset[str] | None = None
) -> tuple[tuple[int, Callable[[str], Any]], ...]:
    """Where the JSON columns stand, each with its field's own decoder (orjson's, as Tortoise picks it when it is
    installed: about a tenth of the standard library's cost on a diary entry's short lists). Only those `selected`
    (`None`: all): a column not read comes as NULL (`_projection`), with nothing to decode."""
    fields = model._meta.fields_map
    return tuple(
        (i, field.decoder)
        for i, name in enumerate(model._meta.fields_db_projection)
        if isinstance(field := fields[name], JSONField) and (selected is None or name in selected)
    )


async def insert(
    model: type[Model], rows: Sequence[Mapping[str, object]], *, using_db: BaseDBAsyncClient | None = None
) -> None:
    """`INSERT INTO <table> (…) VALUES (…), (…)`: rows of the same fields (by field name, the id included), in one
    statement. For append-only rows whose values the caller builds itself (the audit trail)."""
    if not rows:
        return
    db = using_db or model._meta.db
    names = list(rows[0])
    projection = model._meta.fields_db_projection
    params: list[object] = []
    values = []
    for row in rows:
        start = len(params)
        params.extend(row[name] for name in names)
        values.append("(" + ", ".join(f"${start + i + 1}" for i in range(len(names))) + ")")
    targets = ", ".join(f'"{projection[name]}"' for name in names)
    sql = f'INSERT INTO "{model._meta.db_table}" ({targets}) VALUES {", ".join(values)}'  # noqa: S608 -- see the module
    await _fetch(db, sql, params)


async def insert_new(
    model: type[M], values: Mapping[str, Any], *, unique: tuple[str, ...], using_db: BaseDBAsyncClient
) -> M | None:
    """`INSERT INTO <table> (<every column>) VALUES (…) ON CONFLICT (<unique>) DO NOTHING RETURNING <pk>`: a new row
    of `values` (by field name; a field left out takes its default, `_with_defaults`), each value converted as
    Tortoise's own insert converts it (`to_db_value`, which validates; a None where the column is NOT NULL fails in
    the database, an `IntegrityError`). Returns the row as a model instance; None, with nothing written, when a
    row with the same `unique` key (a unique constraint of the model) exists. One round trip where a lookup and
    then an insert took two, and no failed statement to recover from.

    The instance is built from `values` as from a row read back (`instance`), not through
    `Model.__init__`, whose per-attribute bookkeeping (for relations and asynchronous defaults, which a row has
    neither of) cost about 22 µs a diary entry against 9 (bench/README.md, session 15). On PostgreSQL a row's
    UUIDs, decimals and plain values are taken as they are: `values` must already be what each field's
    `to_python_value` makes of them (a UUID, not its text; a decimal at the column's places), as `build_content`'s
    are. Every column comes from `values`: a model with a column that the database or the ORM fills in, or one
    named apart from its field, is refused (`_insert_new_sql`), and no save signals are sent (the models here have
    none). Instants go in UTC on SQLite, as every stored instant does (`_for`)."""
    sql = _insert_new_sql(model, unique)
    meta = model._meta
    row = _with_defaults(model, values)
    fields = meta.fields_map
    params = [fields[name].to_db_value(row[name], model) for name in meta.fields_db_projection]
    if not await _fetch(using_db, sql, params):
        return None
    return instance(model, row)  # by field name, which is each column's (`_insert_new_sql`)


def _with_defaults(model: type[Model], values: Mapping[str, Any]) -> dict[str, Any]:
    """`values`, and for each field left out its default as `Model.__init__` gives it: a callable's result, else
    the value (copied unless immutable), else None. A name that is not a column field is refused, where
    `Model.__init__` would ignore it."""
    projection = model._meta.fields_db_projection
    _require_columns(model, values.keys())
    row = dict(values)
    if len(row) == len(projection):
        return row
    fields = model._meta.fields_map
    for name in projection.keys() - row.keys():
        default = fields[name].default
        if callable(default):
            row[name] = default()
        else:
            row[name] = default if isinstance(default, _IMMUTABLE) else deepcopy(default)
    return row


_IMMUTABLE = (int, float, str, bool, bytes, type(None))


@cache
def _insert_new_sql(model: type[Model], unique: tuple[str, ...]) -> str:
    meta = model._meta
    # `to_db_value` is given the class, not an instance: an `auto_now` field would not fill itself in. An
    # asynchronous default is awaited by `Model.save`, never here.
    filled = any(
        getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) or inspect.iscoroutinefunction(f.default)
        for f in meta.fields_map.values()
    )
    if meta.generated_db_fields or meta.db_default_db_columns or filled:
        raise TypeError(f"{model.__name__} has columns the database or the ORM fills in: insert it through the ORM")
    # The new row is read back by field name as a row by column (`instance`): no model here names them apart.
    if any(name != column for name, column in meta.fields_db_projection.items()):
        raise TypeError(f"{model.__name__} names a column apart from its field: insert it through the ORM")
    values = ", ".join(f"${i + 1}" for i in range(len(meta.fields_db_projection)))
    conflict = ", ".join(f'"{meta.fields_db_projection[name]}"' for name in unique)
    pk = meta.fields_db_projection[meta.pk_attr]
    return (
        f'INSERT INTO "{meta.db_table}" ({columns(model)}) VALUES ({values}) '  # noqa: S608 -- see the module
        f'ON CONFLICT ({conflict}) DO NOTHING RETURNING "{pk}"'
    )


async def _fetch(db: BaseDBAsyncClient, sql: str, params: Sequence[object]) -> list[Any]:
    """The statement's rows (an INSERT's: those it RETURNS).

    On PostgreSQL, asyncpg's `fetch` on the connection Tortoise's own `execute_query` would use (the pool's, or the
    transaction's under its lock), the statement logged at DEBUG as it logs them (the tests and bench/api.py count
    statements there), its errors translated as Tortoise's asyncpg client translates them, but without the rest of
    its wrapper: a second coroutine for the translation, and the statement's text upper-cased to tell a write from
    a read. That wrapper cost about 12,000 instructions for each of a diary write's four statements, 1.8% of the
    write (bench/README.md, session 15). Elsewhere, Tortoise's `execute_query`."""
    if not isinstance(db, AsyncpgDBClient):
        return list((await db.execute_query(*_for(db, sql, params)))[1])
    try:
        async with db.acquire_connection() as connection:
            db.log.debug("%s: %s", sql, params)
            return cast(list[Any], await connection.fetch(sql, *params))
    # Tortoise's table (tortoise/backends/asyncpg/client.py, `_translate_exceptions`), around the same code.
    except (asyncpg.SyntaxOrAccessError, asyncpg.exceptions.DataError) as exc:
        raise OperationalError(exc) from exc
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(exc) from exc
    except asyncpg.InvalidTransactionStateError as exc:
        raise TransactionManagementError(exc) from exc


@asynccontextmanager
async def one_connection(db: BaseDBAsyncClient) -> AsyncIterator[BaseDBAsyncClient]:
    """Several statements outside a transaction on one pooled connection, taken once and given back once, where
    each statement would take and give back its own: the pool's bookkeeping, and a timer for the idle connection
    set and cancelled, each time (1.2% of a 30-entry page's instructions, bench/README.md, session 15). Each
    statement still commits on its own. The client given is Tortoise's, bound to the connection and under its lock,
    as a transaction's is, but with no BEGIN. A client that is not a pool of asyncpg connections (SQLite's one
    connection, or a transaction's) is used as it is."""
    if not isinstance(db, AsyncpgDBClient) or isinstance(db, TransactionalDBClient):
        yield db
        return
    async with db.acquire_connection() as connection:
        bound = TransactionWrapper(db)
        bound._connection = connection
        yield bound


def _for(db: BaseDBAsyncClient, sql: str, params: Sequence[object]) -> tuple[str, list[Any]]:
    """The statement and its values as the connection's driver takes them."""
    if db.capabilities.dialect != "sqlite":
        return sql, list(params)
    # sqlite3 binds `?` in the order they stand, and knows no UUID (Tortoise stores them as text); instants and
    # decimals have adapters Tortoise registers, the same that wrote the stored values. Instants are compared as
    # text there, so they go in UTC, as every stored one is.
    ordered = [params[int(n) - 1] for n in _PLACEHOLDER_NUMBER.findall(sql)]
    return _qmarks(sql), [_sqlite_value(p) for p in ordered]


def _sqlite_value(value: object) -> object:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return require_aware(value, "instant")
    return value


@cache
def _qmarks(sql: str) -> str:
    return _PLACEHOLDER.sub("?", sql)
