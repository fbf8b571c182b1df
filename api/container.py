"""Composition: domain services configured from settings."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from api.domain.account.passwords import Passwords
from api.domain.account.service import AccountPolicy, AccountService
from api.domain.account.throttle import ThrottleRule
from api.domain.account.tokens import AccessTokens
from api.domain.alert.broker import AlertBroker, LocalBroker
from api.domain.alert.service import AlertPolicy, AlertService
from api.domain.diary.service import DiaryPolicy, DiaryService
from api.domain.export.service import ExportService
from api.domain.outcome.service import OutcomeService
from api.domain.patient.service import PatientService
from api.domain.prompt.scheduling import SchedulingPolicy
from api.domain.prompt.service import PromptService
from api.domain.push.models import ProviderName
from api.domain.push.outbox import DeliveryPolicy
from api.domain.push.providers.base import PushProvider
from api.domain.push.providers.log import LogProvider
from api.domain.questionnaire.service import QuestionnaireService
from api.domain.services import Services
from api.domain.treatment.service import TreatmentService
from api.settings import Settings
from jobs.passes import JobConfig


def build_job_config(settings: Settings, providers: Mapping[ProviderName, PushProvider] | None = None) -> JobConfig:
    """Everything the periodic passes need. Providers default to the `log` provider for every platform."""
    log_provider = LogProvider()
    return JobConfig(
        throttle_window=timedelta(minutes=settings.login_window_minutes),
        scheduling=SchedulingPolicy(horizon=timedelta(days=settings.prompt_horizon_days)),
        delivery=DeliveryPolicy(daily_cap=settings.push_daily_cap),
        providers=providers or dict.fromkeys(ProviderName, log_provider),
    )


def build_services(settings: Settings, broker: AlertBroker | None = None) -> Services:
    """`broker` carries alert notices to subscribers; one per process, shared with the in-process jobs."""
    window = timedelta(minutes=settings.login_window_minutes)
    lock = timedelta(minutes=settings.login_lock_minutes)
    accounts = AccountService(
        passwords=Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib),
        tokens=AccessTokens(secret_key=settings.secret_key, ttl=timedelta(minutes=settings.access_token_minutes)),
        policy=AccountPolicy(
            refresh_ttl=timedelta(days=settings.refresh_token_days),
            per_account=ThrottleRule("login-account", settings.login_max_failures, window, lock),
            per_address=ThrottleRule("login-address", settings.login_ip_max_failures, window, lock),
        ),
    )
    scheduling = SchedulingPolicy(horizon=timedelta(days=settings.prompt_horizon_days))
    prompts = PromptService(scheduling)
    alerts = AlertService(
        AlertPolicy(
            escalation_delay=timedelta(minutes=settings.alert_escalation_minutes),
            crisis_message=settings.crisis_message,
        ),
        broker or LocalBroker(),
    )
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
        ),
        prompts=prompts,
        treatment=TreatmentService(scheduling),
        questionnaires=QuestionnaireService(prompts, alerts),
        outcomes=OutcomeService(),
        alerts=alerts,
        exports=ExportService(),
    )
