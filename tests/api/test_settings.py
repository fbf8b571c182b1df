"""Settings from INTERLUDE_* variables, the production guard, and what production turns off in the app."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from api.app import create_app
from api.settings import DEFAULT_SECRET_KEY, MIN_SECRET_KEY_LENGTH, Environment, Settings
from tests.api.support import client_for, codes, data, post_graphql

LONG_SECRET = "k" * MIN_SECRET_KEY_LENGTH
METRICS_TOKEN = "scrape-token-0123456789"
INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE_INTROSPECTION = '{ __type(name: "Account") { fields { name } } }'


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the shell running the tests exports must not decide these tests."""
    for name in list(os.environ):
        if name.upper().startswith("INTERLUDE_"):
            monkeypatch.delenv(name)


def test_defaults_are_a_development_setup() -> None:
    settings = Settings()
    assert settings.env is Environment.DEVELOPMENT
    assert not settings.is_production
    assert settings.database_url == "sqlite://interlude.db"
    assert settings.secret_key == DEFAULT_SECRET_KEY
    assert settings.cors_origins == []
    assert settings.log_level == "INFO"


def test_environment_variables_with_the_prefix_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLUDE_DATABASE_URL", "postgres://db.internal:5432/interlude")
    monkeypatch.setenv("INTERLUDE_MAX_BODY_BYTES", "20000")
    monkeypatch.setenv("INTERLUDE_ACCESS_TOKEN_MINUTES", "5")
    monkeypatch.setenv("INTERLUDE_LOG_LEVEL", "debug")
    monkeypatch.setenv("interlude_port", "9001")  # names are matched case-insensitively
    settings = Settings()
    assert settings.database_url == "postgres://db.internal:5432/interlude"
    assert settings.max_body_bytes == 20_000
    assert settings.access_token_minutes == 5
    assert settings.log_level == "DEBUG"
    assert settings.port == 9001


def test_variables_without_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://someone-elses-app/db")
    monkeypatch.setenv("ENV", "production")
    settings = Settings()
    assert settings.database_url == "sqlite://interlude.db"
    assert not settings.is_production


@pytest.mark.parametrize(
    ("raw", "origins"),
    [
        ("https://clinic.example", ["https://clinic.example"]),
        ("https://a.example, https://b.example", ["https://a.example", "https://b.example"]),
        ('["https://a.example", "https://b.example"]', ["https://a.example", "https://b.example"]),
        ("", []),
    ],
)
def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str, origins: list[str]) -> None:
    monkeypatch.setenv("INTERLUDE_CORS_ORIGINS", raw)
    assert Settings().cors_origins == origins


@pytest.mark.parametrize(
    ("raw", "keys"),
    [
        ("old-key-0123456789abcdef0123456789ab", ["old-key-0123456789abcdef0123456789ab"]),
        ('["k1", "k2"]', ["k1", "k2"]),
    ],
)
def test_previous_signing_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str, keys: list[str]) -> None:
    monkeypatch.setenv("INTERLUDE_PREVIOUS_SECRET_KEYS", raw)
    assert Settings().previous_secret_keys == keys


@pytest.mark.parametrize(("raw", "token"), [("", None), ("scrape-token", "scrape-token")])
def test_a_blank_metrics_token_means_none(monkeypatch: pytest.MonkeyPatch, raw: str, token: str | None) -> None:
    # An empty variable (`INTERLUDE_METRICS_TOKEN=` in .env) is no token: /metrics must not then accept "Bearer ".
    monkeypatch.setenv("INTERLUDE_METRICS_TOKEN", raw)
    assert Settings().metrics_token == token


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INTERLUDE_ENV", "staging"),
        ("INTERLUDE_LOGIN_LOCK_MAX_MINUTES", "1441"),
        ("INTERLUDE_RETENTION_DAYS", "-1"),
        ("INTERLUDE_MAX_QUERY_DEPTH", "1"),
        ("INTERLUDE_MAX_BODY_BYTES", "100"),
        ("INTERLUDE_MAX_QUERY_BYTES", "100"),
        ("INTERLUDE_MAX_QUERY_BYTES", "1000000"),
        ("INTERLUDE_ACCESS_TOKEN_MINUTES", "0"),
        ("INTERLUDE_LOG_LEVEL", "chatty"),
        ("INTERLUDE_CORS_ORIGINS", '["unclosed"'),
        ("INTERLUDE_PUBLIC_BASE_URL", "api.clinic.example"),
        ("INTERLUDE_PUBLIC_BASE_URL", "ftp://api.clinic.example"),
        ("INTERLUDE_PUBLIC_BASE_URL", "https://"),
        ("INTERLUDE_PUBLIC_BASE_URL", "https://api.clinic.example/?x=1"),
        ("INTERLUDE_OUTCOME_RETURN_RULE", "rolling31.v1"),
    ],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_the_public_base_url_is_kept_without_a_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLUDE_PUBLIC_BASE_URL", "https://api.clinic.example/interlude/")
    assert Settings().public_base_url == "https://api.clinic.example/interlude"


@pytest.mark.parametrize("secret", [DEFAULT_SECRET_KEY, "", "short", "s" * (MIN_SECRET_KEY_LENGTH - 1)])
def test_production_refuses_a_default_or_short_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="INTERLUDE_SECRET_KEY"):
        Settings(env=Environment.PRODUCTION, secret_key=secret, metrics_token=METRICS_TOKEN)


def test_production_refuses_a_missing_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLUDE_ENV", "production")
    with pytest.raises(ValidationError, match="INTERLUDE_SECRET_KEY"):
        Settings()
    monkeypatch.setenv("INTERLUDE_SECRET_KEY", LONG_SECRET)
    monkeypatch.setenv("INTERLUDE_METRICS_TOKEN", METRICS_TOKEN)
    assert Settings().is_production


@pytest.mark.parametrize("token", [None, ""], ids=["unset", "blank"])
def test_production_refuses_to_run_without_a_metrics_token(monkeypatch: pytest.MonkeyPatch, token: str | None) -> None:
    # Open, /metrics shows anyone the clinic's activity and runs aggregate queries for them.
    monkeypatch.setenv("INTERLUDE_ENV", "production")
    monkeypatch.setenv("INTERLUDE_SECRET_KEY", LONG_SECRET)
    if token is not None:
        monkeypatch.setenv("INTERLUDE_METRICS_TOKEN", token)  # docker-compose's `${…:-}` would pass ""
    with pytest.raises(ValidationError, match="INTERLUDE_METRICS_TOKEN must be set in production"):
        Settings()
    assert Settings(env=Environment.DEVELOPMENT).metrics_token is None  # development keeps it open


def test_the_deployment_refuses_to_start_without_a_metrics_token() -> None:
    # `${VAR:?message}`: docker compose stops with the message when the variable is unset or empty.
    compose = (Path(__file__).parents[2] / "docker-compose.yml").read_text()
    assert "INTERLUDE_METRICS_TOKEN: ${INTERLUDE_METRICS_TOKEN:?set INTERLUDE_METRICS_TOKEN" in compose


@pytest.mark.parametrize("secret", [LONG_SECRET, "a-random-secret-of-sixty-four-characters-0123456789abcdefghijklm"])
def test_production_accepts_a_long_secret(secret: str) -> None:
    settings = Settings(env=Environment.PRODUCTION, secret_key=secret, metrics_token=METRICS_TOKEN)
    assert settings.is_production


def test_the_environment_is_given_by_name() -> None:
    settings = Settings.model_validate({"env": "production", "secret_key": LONG_SECRET, "metrics_token": METRICS_TOKEN})
    assert settings.env is Environment.PRODUCTION
    with pytest.raises(ValidationError, match="INTERLUDE_SECRET_KEY"):
        Settings.model_validate({"env": "production"})


def test_development_accepts_the_default_secret() -> None:
    assert Settings(env=Environment.DEVELOPMENT).secret_key == DEFAULT_SECRET_KEY


# --- what production changes in the app (validation only: no database is touched) --------------------------


@pytest.fixture
def production() -> Settings:
    return Settings(
        env=Environment.PRODUCTION,
        secret_key=LONG_SECRET,
        metrics_token=METRICS_TOKEN,
        argon2_time_cost=1,
        argon2_memory_kib=8,
    )


@pytest.fixture
def development() -> Settings:
    return Settings(env=Environment.DEVELOPMENT, argon2_time_cost=1, argon2_memory_kib=8)


async def _client_answers(settings: Settings, now: datetime, query: str) -> httpx.Response:
    async with client_for(create_app(settings, manage_orm=False, clock=lambda: now)) as client:
        return await post_graphql(client, query)


@pytest.mark.parametrize("query", [INTROSPECTION, TYPE_INTROSPECTION])
async def test_production_refuses_introspection(production: Settings, now: datetime, query: str) -> None:
    response = await _client_answers(production, now, query)
    assert codes(response)
    assert set(codes(response)) == {"BAD_USER_INPUT"}
    assert all("introspection has been disabled" in e["message"] for e in response.json()["errors"])
    assert response.json()["data"] is None


@pytest.mark.parametrize("query", [INTROSPECTION, TYPE_INTROSPECTION])
async def test_development_allows_introspection(development: Settings, now: datetime, query: str) -> None:
    response = await _client_answers(development, now, query)
    assert data(response)


async def test_production_gives_no_field_suggestions(
    production: Settings, development: Settings, now: datetime
) -> None:
    prod = await _client_answers(production, now, "{ mee { id } }")
    dev = await _client_answers(development, now, "{ mee { id } }")
    assert "Did you mean" in dev.json()["errors"][0]["message"]
    assert "Did you mean" not in prod.json()["errors"][0]["message"]
    assert codes(prod) == ["BAD_USER_INPUT"]


async def test_production_serves_no_graphiql(production: Settings, now: datetime) -> None:
    async with client_for(create_app(production, manage_orm=False, clock=lambda: now)) as client:
        response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "graphiql" not in response.text.lower()


async def test_development_serves_graphiql(development: Settings, now: datetime) -> None:
    async with client_for(create_app(development, manage_orm=False, clock=lambda: now)) as client:
        response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_cors_allows_only_the_configured_origins(now: datetime) -> None:
    settings = Settings(cors_origins=["https://clinic.example"], argon2_time_cost=1, argon2_memory_kib=8)
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    async with client_for(create_app(settings, manage_orm=False, clock=lambda: now)) as client:
        allowed = await client.options("/graphql", headers={"Origin": "https://clinic.example", **preflight})
        refused = await client.options("/graphql", headers={"Origin": "https://evil.example", **preflight})
        simple = await post_graphql(client, "{ __typename }", headers={"Origin": "https://clinic.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://clinic.example"
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert simple.headers["access-control-allow-origin"] == "https://clinic.example"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


async def test_without_configured_origins_no_browser_origin_is_allowed(now: datetime) -> None:
    settings = Settings(argon2_time_cost=1, argon2_memory_kib=8)
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    async with client_for(create_app(settings, manage_orm=False, clock=lambda: now)) as client:
        refused = await client.options("/graphql", headers={"Origin": "https://clinic.example", **preflight})
        simple = await post_graphql(client, "{ __typename }", headers={"Origin": "https://clinic.example"})
    # No CORS layer at all: the preflight is an OPTIONS request like any other, which /graphql does not answer.
    assert refused.status_code == 405
    assert not any(name.startswith("access-control-") for name in refused.headers)
    assert simple.status_code == 200
    assert not any(name.startswith("access-control-") for name in simple.headers)
