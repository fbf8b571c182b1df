"""Settings from `INTERLUDE_*` environment variables. Production refuses unsafe defaults."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from api.domain.outcome.rules import DEFAULT_RULE, RULES

DEFAULT_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105 -- refused in production
MIN_SECRET_KEY_LENGTH = 32


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTERLUDE_", extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite://interlude.db"
    secret_key: str = DEFAULT_SECRET_KEY
    # Key rotation: keys that signed tokens still in use. Their tokens are accepted (by `kid`) until they expire;
    # nothing new is signed with them. `old1,old2` or a JSON list.
    previous_secret_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8000
    # The URL clients reach this API at, e.g. `https://api.clinic.example`: the base of FHIR fullUrl and self links.
    # Unset, the request's own base URL is used, which comes from its Host header (fine in development only).
    public_base_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # `https://a.example,https://b.example` or a JSON list; NoDecode lets the validator below see the raw text.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    access_token_minutes: int = Field(default=15, ge=1, le=60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    invite_hours: int = Field(default=72, ge=1, le=24 * 14)
    # How far back a patient may date an entry before their account existed (paper diary catch-up).
    backfill_days: int = Field(default=14, ge=0, le=365)
    # Prompts are materialised this far ahead (design §4.2: a rolling horizon).
    prompt_horizon_days: int = Field(default=7, ge=1, le=60)
    # Pushes per patient per local day, reminders included; the rest wait for the next day.
    push_daily_cap: int = Field(default=4, ge=1, le=20)
    clock_skew_seconds: int = Field(default=300, ge=0, le=3600)
    login_max_failures: int = Field(default=5, ge=1)
    login_ip_max_failures: int = Field(default=20, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    login_lock_minutes: int = Field(default=15, ge=1)
    # Each further lock of the same key doubles, up to this (at most a day: housekeeping remembers locks that long).
    login_lock_max_minutes: int = Field(default=24 * 60, ge=1, le=24 * 60)
    max_body_bytes: int = Field(default=1_000_000, ge=10_000)
    # GraphQL documents beyond these are refused with QUERY_TOO_COMPLEX before they run.
    max_query_depth: int = Field(default=10, ge=2, le=50)
    max_query_aliases: int = Field(default=15, ge=0, le=200)
    max_query_tokens: int = Field(default=2000, ge=100, le=100_000)
    max_query_cost: int = Field(default=10_000, ge=10)
    # UTF-8 bytes of a GraphQL document (its variables not included), over HTTP and the websocket alike. The largest
    # document the apps send is about a kilobyte. Parser and validation caches keep up to 256 documents each, so the
    # bound also bounds them (16 MiB of text at the default).
    max_query_bytes: int = Field(default=64 * 1024, ge=1024, le=256 * 1024)
    # `/metrics` answers only with `Authorization: Bearer <token>` when this is set; production requires it.
    metrics_token: str | None = None
    # How long /readyz waits for the database before answering 503.
    readiness_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Argon2id cost; the defaults follow RFC 9106's second recommended option.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    # The periodic passes run inside `serve` when true. Default: on for SQLite (one process owns the file),
    # off for PostgreSQL, where `interlude jobs` processes run them.
    jobs_in_process: bool | None = None
    # Clinical layer. A clinic's own settings (set by its admins) override these defaults.
    crisis_message: str = (
        "If you are thinking about harming yourself, call or text 988 (Suicide & Crisis Lifeline, US) now. "
        "If you are in immediate danger, call 911. This diary is not monitored around the clock."
    )
    # An unacknowledged critical alert goes to the clinic's admins after this long.
    alert_escalation_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # Extra instrument definitions (JSON files) a clinic holds a licence for, e.g. BPI; added to the built-in ones.
    instruments_dir: Path | None = None
    # How return of pain after a course's last session is judged (api/domain/outcome/rules.py). Every value
    # computed from it names the rule it came from.
    outcome_return_rule: str = DEFAULT_RULE
    # Legal retention hold: an erased patient's clinical record is kept this long after their last clinical data
    # (0: no hold, erasure removes it at once). Identifying and contact data go at once either way.
    retention_days: int = Field(default=3650, ge=0, le=36500)
    # Push providers. A platform without credentials falls back to the `log` provider (records, sends nothing).
    push_fcm_service_account_file: Path | None = None
    push_fcm_base_url: str = "https://fcm.googleapis.com"
    push_apns_key_file: Path | None = None
    push_apns_key_id: str | None = None
    push_apns_team_id: str | None = None
    push_apns_topic: str | None = None
    push_apns_base_url: str = "https://api.push.apple.com"
    push_webpush_vapid_key_file: Path | None = None
    push_webpush_subject: str = "mailto:push@interlude.invalid"
    push_expo_enabled: bool = False  # Expo needs no credentials, so sending through it is opted into
    push_expo_access_token: str | None = None
    push_expo_base_url: str = "https://exp.host"
    # How long a dispatcher holds the outbox rows it claimed: one that dies mid-batch leaves its unsent rows for this
    # long. A dispatcher starts no send in the last 30 s of its lease (a quarter, for leases under 2 minutes) and
    # hands the rest back.
    # The outbox is swept every 15 s, or every quarter lease if that is shorter.
    push_lease_seconds: int = Field(default=120, ge=1, le=3600)

    @property
    def runs_jobs_in_process(self) -> bool:
        if self.jobs_in_process is not None:
            return self.jobs_in_process
        return self.database_url.startswith("sqlite")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("metrics_token")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        # docker-compose passes an unset variable as "": that means no token, not the empty token.
        return value or None

    @field_validator("outcome_return_rule")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        if value not in RULES:
            raise ValueError(f"unknown rule; known rules: {', '.join(sorted(RULES))}")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        # Links in FHIR bundles are built from it: a bare host name would yield links no client can follow.
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("must be an absolute http(s) URL, e.g. https://api.clinic.example")
        return value.rstrip("/")

    @field_validator("cors_origins", "previous_secret_keys", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [origin.strip() for origin in value.split(",") if origin.strip()]

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @model_validator(mode="after")
    def _lock_within_its_cap(self) -> Settings:
        # The first lock longer than the cap would make the cap meaningless, and the backoff arithmetic too.
        if self.login_lock_minutes > self.login_lock_max_minutes:
            raise ValueError("INTERLUDE_LOGIN_LOCK_MINUTES must not exceed INTERLUDE_LOGIN_LOCK_MAX_MINUTES")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        weak = self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < MIN_SECRET_KEY_LENGTH
        if self.is_production and weak:
            raise ValueError(
                f"INTERLUDE_SECRET_KEY must be set to a random value of at least "
                f"{MIN_SECRET_KEY_LENGTH} characters in production"
            )
        # Open, /metrics tells anyone who reaches it the clinic's activity and runs aggregate queries for them.
        if self.is_production and self.metrics_token is None:
            raise ValueError(
                "INTERLUDE_METRICS_TOKEN must be set in production (Prometheus sends it as a bearer token)"
            )
        return self
