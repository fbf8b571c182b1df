"""Tortoise configuration shared by the app, the CLI, the jobs process and the tests."""

from __future__ import annotations

import asyncio
import errno
import inspect
import socket
import types
from collections.abc import Coroutine, Generator
from contextlib import suppress
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionalDBClient, TransactionContext, TransactionContextPooled
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import get_connections
from tortoise.exceptions import DBConnectionError

from api.settings import Settings

MODEL_MODULES = [
    "api.domain.account.models",
    "api.domain.patient.models",
    "api.domain.diary.models",
    "api.domain.audit.models",
    "api.domain.treatment.models",
    "api.domain.prompt.models",
    "api.domain.push.models",
    "api.domain.questionnaire.models",
    "api.domain.alert.models",
]


# URL schemes Tortoise serves with asyncpg: served here with PostgresClient instead.
ASYNCPG_SCHEMES = frozenset({"postgres", "postgresql", "asyncpg"})


def tortoise_config(database_url: str) -> dict[str, object]:
    return {
        "connections": {"default": _connection(database_url)},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _connection(database_url: str) -> str | dict[str, Any]:
    if urlsplit(database_url).scheme not in ASYNCPG_SCHEMES:
        return database_url
    # The URL's own settings (host, database, `?maxsize=`…) as Tortoise reads them; the engine is this module.
    return {**expand_db_url(database_url), "engine": __name__}


class _GivingBackTransaction(TransactionContextPooled):
    """Tortoise (1.1.9) takes a pooled connection and makes it the task's current one before it sends BEGIN, and
    gives both back in `__aexit__` only, which Python does not run when `__aenter__` raises. So a BEGIN failing on
    a connection the server had ended (pg_terminate_backend, a failover, a restart) kept its pool slot for good, and
    once `maxsize` slots were lost every transaction waited forever for a connection: the service hung until it was
    restarted. Here they are given back."""

    __slots__ = ()

    async def __aenter__(self) -> TransactionalDBClient:
        try:
            return await super().__aenter__()
        except BaseException:
            # The BEGIN's own failure is the one to report; giving back a broken connection may fail too.
            with suppress(Exception):
                await self._give_back()
            raise

    async def _give_back(self) -> None:
        token = getattr(self, "token", None)
        if token is None:  # failed before a connection was taken
            return
        get_connections().reset(token)
        client: Any = self.client
        pool = client._parent._pool
        if pool is not None:
            # asyncpg closes a connection that cannot be reset, which returns its slot to the pool.
            await pool.release(client._connection)


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no type hints
    """A pooled connection given back without asyncpg's reset statement.

    By default asyncpg sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;` each time a
    connection goes back to the pool: a round trip per statement outside a transaction (Tortoise takes a connection
    for each), about 30 µs of this process's CPU and as much of the server's (bench/README.md). It clears session
    state, which nothing here leaves on a pooled connection: no session `SET`, no advisory lock, no cursor outside a
    transaction, no LISTEN (the alert broker listens on a connection of its own, outside the pool);
    tests/resilience/test_pool.py reads the code for such statements, and tests/pg_session.py reads the server for
    such state after every PostgreSQL test. An open transaction is still rolled back on release: asyncpg does that
    whatever this query is."""

    def get_reset_query(self) -> str:
        return ""

    async def reset(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 -- asyncpg's signature
        """asyncpg's `reset` (its `_reset`: listeners cleared, an open transaction rolled back), without the
        `asyncio.timeout` it arms around it when there is no time limit to keep (the pool's release gives none,
        `GivingBackPool.release`) and no reset statement to send (`get_reset_query`): otherwise asyncpg's own."""
        if timeout is not None or self.get_reset_query():
            await super().reset(timeout=timeout)
            return
        await self._reset()


class FairHolderQueue(asyncpg.pool._PoolConnectionHolderQueue):  # type: ignore[misc]  # asyncpg: no hints
    """asyncpg's queue of idle connections, handing a connection given back straight to the request that has waited
    longest for one.

    asyncio's queue wakes its first waiter when an item is put, but leaves the item in the queue until that waiter
    runs. On a busy event loop every task that asks for a connection meanwhile finds the queue not empty and takes
    it; the waiter, finding it empty again, waits anew at the back of the line. Under load some requests lost their
    turn again and again: the write's 99th percentile was the wait for a connection (bench/README.md). Here a
    connection given back while requests wait is the first one's before anyone else runs, and a request takes an
    idle connection itself only when nobody waits before it. Which idle connection it takes is asyncpg's choice, as
    before (a live one, the most recently used)."""

    async def get(self) -> Any:
        if not self._getters and not self.empty():
            return self.get_nowait()
        waiter = self._get_loop().create_future()
        self._getters.append(waiter)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # Handed a connection, then cancelled before taking it: it goes to the next in line.
                self.put_nowait(waiter.result())
            else:
                with suppress(ValueError):  # already taken out by `put_nowait`, which skips what is cancelled
                    self._getters.remove(waiter)
            raise

    def put_nowait(self, item: Any) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        super().put_nowait(item)


class GivingBackPool(asyncpg.Pool):  # type: ignore[misc]  # asyncpg ships no type hints
    """asyncpg's pool, handing a connection given back to the request that has waited longest for one
    (`FairHolderQueue`), and giving it back without a task when nothing needs waiting for.

    asyncpg's `Pool.release` runs the holder's release in `asyncio.shield`, a task of its own, so that cancelling
    the caller cannot keep the connection from going back: a task for every statement Tortoise sends outside a
    transaction (bench/README.md). With no reset statement (`PooledConnection`) and no transaction to roll back,
    that release never waits: here its first step runs at once, and only a release that must wait (a rollback, a
    close) goes on in a shielded task, as before. A step that does not wait cannot be cancelled, so the guarantee
    is the same. With a release timeout (Tortoise sets none) asyncpg's own path is taken: the timeout would be
    armed against the caller's task."""

    async def _initialize(self) -> None:
        await super()._initialize()
        # asyncpg makes its queue here, by name; nobody can ask the pool for a connection before this returns. The
        # class adds behaviour only, no state, to the class it extends; a queue of any other (a later asyncpg's) is
        # refused, not changed.
        if type(self._queue) not in FairHolderQueue.__bases__:
            raise TypeError(f"asyncpg's pool now keeps its connections in {type(self._queue).__name__}")
        self._queue.__class__ = FairHolderQueue

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 -- asyncpg's
        holder = getattr(connection, "_holder", None)
        if (
            type(connection) is not asyncpg.pool.PoolConnectionProxy
            or holder is None
            or holder._pool is not self
            or connection._con is None  # released already: asyncpg's path does nothing
            or (timeout if timeout is not None else holder._timeout) is not None
        ):
            await super().release(connection, timeout=timeout)
            return
        self._check_init()
        connection._con._on_release()  # as asyncpg's own release does first
        release = holder.release(None)
        try:
            waiting = release.send(None)
        except StopIteration:
            # Back in the pool, or already the first waiting request's (`FairHolderQueue`): the caller cannot take
            # it back ahead of those waiting.
            return
        await asyncio.shield(_resumed(release, waiting))


async def _resumed(started: Coroutine[Any, Any, None], waiting: Any) -> None:
    await _going_on(started, waiting)


@types.coroutine
def _going_on(started: Coroutine[Any, Any, None], waiting: Any) -> Generator[Any, Any, None]:
    """The rest of a coroutine whose first step has run and yielded `waiting`, driven as its awaiting task would."""
    while True:
        try:
            sent = yield waiting
        except BaseException as exc:  # thrown in by the task (a cancellation): passed on, as `await` would
            try:
                waiting = started.throw(exc)
            except StopIteration:
                return
        else:
            try:
                waiting = started.send(sent)
            except StopIteration:
                return


# What `asyncpg.create_pool` passes to `Pool` when not told otherwise: `GivingBackPool` is made as it makes its own.
_POOL_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(asyncpg.create_pool).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
}


class PostgresClient(AsyncpgDBClient):
    """Tortoise's asyncpg client, with transactions that give their connection back when BEGIN fails, pooled
    connections that are given back without a reset statement (`PooledConnection`) and without a task
    (`GivingBackPool`)."""

    connection_class = PooledConnection

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        pool = GivingBackPool(None, **{**_POOL_DEFAULTS, **kwargs})
        return await pool

    def _in_transaction(self) -> TransactionContext:
        return _GivingBackTransaction(TransactionWrapper(self), self._pool_init_lock)


# Tortoise loads an engine's client from its module's `client_class`: PostgreSQL connections name this module.
client_class = PostgresClient


def __getattr__(name: str) -> object:
    # Read by Tortoise's own CLI (`tortoise makemigrations`) through [tool.tortoise] in pyproject.toml;
    # computed on access so that importing this module never reads the environment.
    if name == "TORTOISE_ORM":
        return tortoise_config(Settings().database_url)
    raise AttributeError(name)


def is_connection_failure(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the database could not be reached or dropped the connection. The
    request may be sent again: a statement cut off is rolled back by the server, and a commit cut off may have
    happened, which the writes a phone resends are idempotent for (diary entries by clientId).

    Statement errors (a unique violation, bad data, a syntax error) are not: sending them again fails again."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _lost_connection(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _lost_connection(exc: BaseException) -> bool:
    if isinstance(exc, _CONNECTION_FAILURES):
        return True
    if isinstance(exc, OSError):
        # Connecting: a host or network that cannot be reached, a name that does not resolve.
        return isinstance(exc, socket.gaierror) or exc.errno in _UNREACHABLE
    # asyncpg's InterfaceError also reports misuse (a connection used by two tasks at once): only a closed
    # connection or pool counts, e.g. "cannot call Transaction.rollback(): the underlying connection is closed".
    return isinstance(exc, asyncpg.InterfaceError) and ("is closed" in str(exc) or "is closing" in str(exc))


_CONNECTION_FAILURES = (
    DBConnectionError,  # Tortoise: the database could not be opened
    ConnectionError,  # refused, reset, broken pipe
    TimeoutError,  # connect timeout
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, incl. "connection was closed in the middle of operation"
    asyncpg.AdminShutdownError,  # 57P01: pg_terminate_backend, a fast shutdown
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.CannotConnectNowError,  # 57P03: starting up or in recovery
    asyncpg.TooManyConnectionsError,  # 53300
    # The driver's protocol out of step with the server. Seen when the server ends an idle pooled connection (a FATAL
    # that answers no query) and the next statement is sent on it before the socket's close is read ("cannot switch
    # to state 12; another operation (2) is in progress"): that statement is never sent, the connection is done for.
    asyncpg.InternalClientError,
)
_UNREACHABLE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.ETIMEDOUT})
