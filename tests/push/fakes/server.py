"""Serving a fake on 127.0.0.1 with hypercorn, inside the test's event loop, and what all fakes share."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
import ssl
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.typing import Framework
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

READY_PATH = "/_fake/ready"
STARTUP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Received:
    """One request as it reached the fake: everything that left our process."""

    method: str
    path: str
    http_version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    # What the body means once decoded (Web Push: decrypted); the privacy test scans this too.
    plaintext: bytes | None = None

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.plaintext if self.plaintext is not None else self.body)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None  # JSON-encoded when not None
    headers: dict[str, str] = field(default_factory=dict)

    def response(self, default_headers: dict[str, str] | None = None) -> Response:
        headers = {**(default_headers or {}), **self.headers}
        if self.body is None:
            return Response(status_code=self.status, headers=headers)
        return JSONResponse(self.body, status_code=self.status, headers=headers)


class FakeService:
    """Records requests, checks them (a failed check is answered like the real service would and kept in
    `problems`), and answers scripted replies when a test queued some."""

    def __init__(self) -> None:
        self.url = ""
        self.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # the fake's clock, set by tests with the provider's
        self.received: list[Received] = []
        self.problems: list[str] = []
        self.replies: deque[Reply] = deque()
        self.hang = False  # hold every request until the fake stops: the client's timeout fires first
        self._release = asyncio.Event()

    def opaque_values(self) -> list[str]:
        """Random credentials this fake issued or holds (access tokens, subscription ids and keys): the privacy
        scan masks them, as random text can spell anything."""
        return []

    def reply_next(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def app(self) -> Starlette:
        async def ready(_: Request) -> Response:
            return Response("ok")

        return Starlette(routes=[Route(READY_PATH, ready), *self.routes()])

    async def record(self, request: Request, plaintext: bytes | None = None) -> Received:
        received = Received(
            method=request.method,
            path=request.url.path,
            http_version=str(request.scope.get("http_version")),
            headers=tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.scope["headers"]),
            body=await request.body(),
            plaintext=plaintext,
        )
        self.received.append(received)
        return received

    async def maybe_hang(self) -> None:
        if self.hang:
            await self._release.wait()

    def refuse(self, problem: str, reply: Reply) -> Response:
        self.problems.append(problem)
        return reply.response()

    def scripted(self) -> Reply | None:
        return self.replies.popleft() if self.replies else None

    def release(self) -> None:
        self._release.set()

    def ago(self, instant: datetime) -> timedelta:
        return self.now - instant


@dataclass(frozen=True)
class Tls:
    certfile: Path
    keyfile: Path
    client_context: ssl.SSLContext  # trusts exactly this certificate


def make_tls(directory: Path) -> Tls:
    """A self-signed certificate for 127.0.0.1, generated now, trusted only by the returned client context."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "push-fake.test")])
    start = datetime.now(UTC) - timedelta(days=1)  # certificate validity is checked against the OS clock
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    certfile, keyfile = directory / "fake.crt", directory / "fake.key"
    certfile.write_bytes(cert_pem)
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(cadata=cert_pem.decode())
    return Tls(certfile, keyfile, context)


class RunningServer:
    """hypercorn serving one fake on a random free port of 127.0.0.1, in the current event loop."""

    def __init__(self, fake: FakeService, *, tls: Tls | None = None) -> None:
        self.fake = fake
        self.tls = tls
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self) -> None:
        # Bind and listen before hypercorn runs: the port is known at once and no connection is refused meanwhile.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        config = Config()
        config.bind = [f"fd://{sock.detach()}"]
        config.errorlog = logging.getLogger("tests.push.hypercorn")
        config.graceful_timeout = 1.0
        if self.tls is not None:
            config.certfile, config.keyfile = str(self.tls.certfile), str(self.tls.keyfile)
        scheme = "https" if self.tls else "http"
        self.url = self.fake.url = f"{scheme}://127.0.0.1:{port}"
        self._task = asyncio.create_task(self._serve(config))
        await self._wait_ready()

    async def _serve(self, config: Config) -> None:
        # hypercorn types apps against its own scope TypedDicts; a Starlette app is a plain ASGI callable.
        app = cast("Framework", self.fake.app())
        await serve(app, config, shutdown_trigger=self._stop.wait, mode="asgi")

    async def _wait_ready(self) -> None:
        verify: ssl.SSLContext | bool = self.tls.client_context if self.tls else False
        async with httpx.AsyncClient(verify=verify, timeout=STARTUP_TIMEOUT) as client:
            for _ in range(50):  # bounded: a server that never answers fails the test instead of hanging it
                assert self._task is not None
                if self._task.done():
                    self._task.result()  # re-raises why hypercorn stopped
                    raise RuntimeError("the fake server stopped during start-up")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(self.url + READY_PATH)).status_code == 200:
                        return
                await asyncio.sleep(0.01)
        raise RuntimeError("the fake server did not become ready")

    async def stop(self) -> None:
        self.fake.release()
        if self._task is None:
            return
        self._stop.set()
        await self._task
        self._task = None
