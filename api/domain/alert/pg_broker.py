"""Alert notices across API replicas: PostgreSQL NOTIFY on one channel, LISTEN on one connection per process.

Each process holds one dedicated asyncpg connection, opened on first use, that LISTENs on the channel and also
sends this process's NOTIFYs (PostgreSQL delivers a notice to its own sender too, so local subscribers hear it the
same way as every other replica's). Notices reach this process's subscribers through a `LocalBroker`.

NOTIFY runs on that dedicated connection, outside any data transaction: callers publish after their commit, and a
notice can neither be lost to a rollback of unrelated work nor announce uncommitted rows.

A publish returns at once: the NOTIFY is sent by a background task, so a patient's write never waits for this
connection. While the connection is down a notice waits for it (at most `PUBLISH_TIMEOUT`), and `close()` lets
pending notices go out (at most `DRAIN_TIMEOUT`) before it stops.

A lost connection is reopened with backoff. Notices sent while it is down are not replayed (NOTIFY keeps nothing):
a subscription is a live feed, and clients read the `alerts` list when they (re)connect.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from uuid import UUID

import asyncpg
from tortoise.backends.base.config_generator import expand_db_url

from api.domain.alert.broker import AlertNotice, LocalBroker, NoticeKind

log = logging.getLogger("interlude.alerts")

CHANNEL = "interlude_alerts"
# Seconds before the n-th attempt to reopen the listening connection; the last value repeats.
RETRY_DELAYS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# An idle listening connection is probed this often (seconds): a silent network cut or a NAT that forgot the
# connection never closes the socket, and the probe's traffic keeps such middleboxes from forgetting it.
PROBE_INTERVAL = 30.0
PROBE_TIMEOUT = 10.0
# A notice waits at most this long (in the background) for the connection, then is dropped: long after the fact
# it would only repeat what the `alerts` list already shows.
PUBLISH_TIMEOUT = 30.0
# At shutdown, pending notices get this long to go out: a stopping process must not hang on a lost database.
DRAIN_TIMEOUT = 5.0
# Errors that mean "the connection is gone or unusable", as opposed to a bug in this module.
CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

Connect = Callable[[], Awaitable[asyncpg.Connection]]


def encode(notice: AlertNotice) -> str:
    """Ids and the kind only: a NOTIFY payload is visible to every session of the database and in its logs."""
    return json.dumps({"alert": str(notice.alert_id), "clinic": str(notice.clinic_id), "kind": notice.kind.value})


def decode(payload: str) -> AlertNotice:
    """Raises ValueError (or KeyError, TypeError) for anything this module did not write."""
    data = json.loads(payload)
    return AlertNotice(UUID(data["alert"]), UUID(data["clinic"]), NoticeKind(data["kind"]))


def connector(database_url: str) -> Connect:
    """asyncpg connections to the database Tortoise uses, with its credentials and TLS choice (not its pool
    options, which asyncpg would take for server settings)."""
    credentials = expand_db_url(database_url)["credentials"]
    options = {
        key: credentials[key]
        for key in ("host", "port", "user", "password", "database", "ssl")
        if credentials.get(key) is not None
    }

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(**options)

    return connect


class PostgresBroker:
    def __init__(
        self,
        connect: Connect,
        *,
        channel: str = CHANNEL,
        publish_timeout: float = PUBLISH_TIMEOUT,
        drain_timeout: float = DRAIN_TIMEOUT,
        probe_interval: float = PROBE_INTERVAL,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._publish_timeout = publish_timeout
        self._drain_timeout = drain_timeout
        self._probe_interval = probe_interval
        self._local = LocalBroker()
        # The listening connection while it is open, else None.
        self._conn: asyncpg.Connection | None = None
        # Replaced each time `_conn` changes; whoever waits for a connection wakes and looks again.
        self._changed = asyncio.Event()
        # One statement at a time on the connection (asyncpg refuses concurrent ones).
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        # Notices on their way out. Held here because the event loop keeps only weak references to tasks.
        self._sending: set[asyncio.Task[None]] = set()
        # Set when `close()` starts: later notices are refused rather than left behind.
        self._closing = False
        self._closed = False

    @classmethod
    def from_url(cls, database_url: str, *, channel: str = CHANNEL) -> PostgresBroker:
        return cls(connector(database_url), channel=channel)

    async def publish(self, notice: AlertNotice) -> None:
        if self._closing:
            log.warning("alert.notify_failed", extra={"alert_id": str(notice.alert_id), "error": "BrokerClosed"})
            return
        task = asyncio.create_task(self._send(notice), name="alert-broker-notify")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    def pending(self) -> int:
        """Notices published but not sent yet."""
        return len(self._sending)

    @asynccontextmanager
    async def subscribe(self, clinic_id: UUID) -> AsyncIterator[AsyncIterator[AlertNotice]]:
        # Listening before the subscription counts as established: a notice sent after that reaches it.
        await self.listening()
        async with self._local.subscribe(clinic_id) as notices:
            yield notices

    def subscribers(self, clinic_id: UUID) -> int:
        return self._local.subscribers(clinic_id)

    async def wait_subscribers(self, clinic_id: UUID, count: int) -> None:
        await self._local.wait_subscribers(clinic_id, count)

    async def listening(self, *, not_pid: int | None = None) -> int:
        """The backend pid of the listening connection, once there is one (other than `not_pid`: a connection
        known to be lost whose loss this process may not have noticed yet)."""
        return int((await self._connection(not_pid)).get_server_pid())

    async def close(self) -> None:
        self._closing = True
        if self._sending:
            # Waited for, not cancelled: a notice that can still go out does. Those that cannot are cancelled,
            # and `_send` logs them.
            _, late = await asyncio.wait(set(self._sending), timeout=self._drain_timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None:
            await self._quietly_close(self._conn)
            self._set_connection(None)

    async def _send(self, notice: AlertNotice) -> None:
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._notify(encode(notice))
        except asyncio.CancelledError:
            log.warning("alert.notify_failed", extra={"alert_id": str(notice.alert_id), "error": "Cancelled"})
            raise
        except Exception as exc:  # a background task: whatever went wrong is logged here or nowhere
            log.warning("alert.notify_failed", extra={"alert_id": str(notice.alert_id), "error": type(exc).__name__})

    async def _notify(self, payload: str) -> None:
        # Two tries: the first may meet a connection that was lost a moment ago and not yet replaced.
        for attempt in range(2):
            conn = await self._connection()
            try:
                async with self._lock:
                    await conn.execute("SELECT pg_notify($1, $2)", self._channel, payload)
                return
            except CONNECTION_ERRORS:
                if attempt == 1:
                    raise
                # The one statement sent here cannot fail on its own: the connection is bad. Dropping it makes
                # the listener reconnect, and the second try waits for that.
                pid = conn.get_server_pid()
                conn.terminate()
                await self._connection(not_pid=pid)

    async def _connection(self, not_pid: int | None = None) -> asyncpg.Connection:
        self._start()
        while True:
            if self._closed:
                raise RuntimeError("the alert broker is closed")
            conn = self._conn
            if conn is not None and not conn.is_closed() and conn.get_server_pid() != not_pid:
                return conn
            await self._changed.wait()

    def _start(self) -> None:
        if self._closed:
            raise RuntimeError("the alert broker is closed")
        if self._task is None:
            self._task = asyncio.create_task(self._keep_listening(), name="alert-broker-listener")

    async def _keep_listening(self) -> None:
        attempt = 0
        while not self._closed:
            await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            lost = asyncio.Event()
            try:
                conn = await self._open(lost)
            except Exception as exc:  # a bad setting too: retried, and logged, rather than ending the listener
                # The class only: driver messages may quote the host, user or database.
                log.warning("alert.listener_unavailable", extra={"error": type(exc).__name__, "attempt": attempt})
                attempt += 1
                continue
            if attempt:
                log.info("alert.listener_restored", extra={"attempt": attempt})
            attempt = 0
            self._set_connection(conn)
            await self._watch(conn, lost)
            self._set_connection(None)
            if not self._closed:
                log.warning("alert.listener_lost")
                attempt = 1

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Until the connection is lost, probing it whenever it has been idle for a while."""
        while not lost.is_set():
            with suppress(TimeoutError):
                async with asyncio.timeout(self._probe_interval):
                    await lost.wait()
            if not lost.is_set() and not await self._answers(conn):
                # Closing it runs the termination listener, which sets `lost`.
                conn.terminate()

    async def _answers(self, conn: asyncpg.Connection) -> bool:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT), self._lock:
                await conn.execute("SELECT 1")
        except CONNECTION_ERRORS:
            return False
        return True

    async def _open(self, lost: asyncio.Event) -> asyncpg.Connection:
        conn = await self._connect()
        try:
            conn.add_termination_listener(lambda _: lost.set())
            await conn.add_listener(self._channel, self._on_notification)
        except BaseException:
            await self._quietly_close(conn)
            raise
        return conn

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            notice = decode(payload)
        except (ValueError, KeyError, TypeError):
            # Not ours (someone else NOTIFYs on the channel); the payload itself is not logged.
            log.warning("alert.notice_malformed")
            return
        self._local.deliver(notice)

    def _set_connection(self, conn: asyncpg.Connection | None) -> None:
        self._conn = conn
        self._changed.set()
        self._changed = asyncio.Event()

    @staticmethod
    async def _quietly_close(conn: asyncpg.Connection) -> None:
        try:
            await conn.close(timeout=2)
        except CONNECTION_ERRORS:
            conn.terminate()
