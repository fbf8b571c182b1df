"""Composition: domain services configured from settings."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from api.domain.account.passwords import Passwords
from api.domain.account.sealing import Sealer
from api.domain.account.service import AccountPolicy, AccountService
from api.domain.account.throttle import ThrottleRule
from api.domain.account.tokens import AccessTokens
from api.domain.alert.broker import AlertBroker, LocalBroker
from api.domain.alert.pg_broker import PostgresBroker
from api.domain.alert.service import AlertPolicy, AlertService
from api.domain.clock import utc_now
from api.domain.diary.service import DiaryPolicy, DiaryService
from api.domain.export.service import ExportService
from api.domain.outcome.service import OutcomeService
from api.domain.patient.erasure import ErasureService
from api.domain.patient.overview import OverviewService
from api.domain.patient.service import PatientService
from api.domain.prompt.scheduling import SchedulingPolicy
from api.domain.prompt.service import PromptService
from api.domain.push.models import ProviderName
from api.domain.push.outbox import DeliveryPolicy
from api.domain.push.providers.base import PushProvider
from api.domain.push.providers.log import LogProvider
from api.domain.questionnaire import instruments
from api.domain.questionnaire.service import QuestionnaireService
from api.domain.services import Services
from api.domain.treatment.service import TreatmentService
from api.settings import Settings
from jobs.passes import JobConfig

POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "asyncpg", "psycopg"})


def build_job_config(
    settings: Settings,
    providers: Mapping[ProviderName, PushProvider] | None = None,
    alerts: AlertService | None = None,
) -> JobConfig:
    """Everything the periodic passes need. Providers default to the `log` provider for every platform; `alerts`
    should be the process's shared service, so that escalations reach this process's subscribers."""
    log_provider = LogProvider()
    return JobConfig(
        throttle_window=timedelta(minutes=settings.login_window_minutes),
        scheduling=SchedulingPolicy(horizon=timedelta(days=settings.prompt_horizon_days)),
        delivery=DeliveryPolicy(
            daily_cap=settings.push_daily_cap, lease=timedelta(seconds=settings.push_lease_seconds)
        ),
        providers=providers or dict.fromkeys(ProviderName, log_provider),
        alerts=alerts or build_alerts(settings),
    )


def build_broker(settings: Settings) -> AlertBroker:
    """One per process, closed at shutdown. PostgreSQL: notices reach every replica (LISTEN/NOTIFY); SQLite (one
    embedded process): they stay in this process."""
    scheme = settings.database_url.partition("://")[0]
    if scheme in POSTGRES_SCHEMES:
        return PostgresBroker.from_url(settings.database_url)
    return LocalBroker()


def build_alerts(settings: Settings, broker: AlertBroker | None = None) -> AlertService:
    policy = AlertPolicy(
        escalation_delay=timedelta(minutes=settings.alert_escalation_minutes),
        crisis_message=settings.crisis_message,
    )
    return AlertService(policy, broker or LocalBroker())


def build_services(settings: Settings, broker: AlertBroker | None = None, *, now: datetime | None = None) -> Services:
    """`broker` carries alert notices to subscribers; one per process, shared with the in-process jobs. `now` is
    the process's start (default: the clock's): tokens of a previous signing key issued after it are refused."""
    window = timedelta(minutes=settings.login_window_minutes)
    lock = timedelta(minutes=settings.login_lock_minutes)
    # Each further lock of an account's key lasts twice as long, up to this (settings keep it ≥ `lock`).
    max_lock = timedelta(minutes=settings.login_lock_max_minutes)
    previous_keys = tuple(settings.previous_secret_keys)
    accounts = AccountService(
        passwords=Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib),
        tokens=AccessTokens(
            secret_key=settings.secret_key,
            ttl=timedelta(minutes=settings.access_token_minutes),
            previous_keys=previous_keys,
            started_at=now or utc_now(),
        ),
        policy=AccountPolicy(
            refresh_ttl=timedelta(days=settings.refresh_token_days),
            per_account=ThrottleRule("login-account", settings.login_max_failures, window, lock, max_lock),
            # No backoff by address: one address may be a whole clinic behind its NAT (throttle.py).
            per_address=ThrottleRule("login-address", settings.login_ip_max_failures, window, lock),
        ),
        sealer=Sealer(settings.secret_key, previous_keys),
    )
    scheduling = SchedulingPolicy(horizon=timedelta(days=settings.prompt_horizon_days))
    prompts = PromptService(scheduling)
    alerts = build_alerts(settings, broker)
    # A malformed definition file stops start-up here, naming the file and key.
    registry = instruments.Registry.load(settings.instruments_dir)
    instruments.install(registry)
    return Services(
        accounts=accounts,
        patients=PatientService(
            accounts=accounts,
            invite_ttl=timedelta(hours=settings.invite_hours),
            register_rule=ThrottleRule("register-address", settings.login_ip_max_failures, window, lock),
            scheduling=scheduling,
        ),
        diary=DiaryService(
            DiaryPolicy(
                backfill=timedelta(days=settings.backfill_days),
                clock_skew=timedelta(seconds=settings.clock_skew_seconds),
            ),
            prompts,
            alerts,
        ),
        prompts=prompts,
        treatment=TreatmentService(scheduling),
        questionnaires=QuestionnaireService(prompts, alerts, registry),
        outcomes=OutcomeService(prompts, return_rule=settings.outcome_return_rule),
        alerts=alerts,
        exports=ExportService(),
        overview=OverviewService(),
        erasure=ErasureService(accounts=accounts, retention=timedelta(days=settings.retention_days)),
    )
