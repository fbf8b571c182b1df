"""Push providers built from settings: each platform with credentials gets its real client, the rest `log`."""

from __future__ import annotations

import logging

from api.domain.push.models import ProviderName
from api.domain.push.providers import (
    ApnsConfig,
    ApnsProvider,
    ExpoConfig,
    ExpoProvider,
    FcmConfig,
    FcmProvider,
    LogProvider,
    PushProvider,
    ServiceAccount,
    WebPushConfig,
    WebPushProvider,
)
from api.settings import Settings

log = logging.getLogger("interlude.push")


def build_providers(settings: Settings) -> dict[ProviderName, PushProvider]:
    fallback = LogProvider()
    providers: dict[ProviderName, PushProvider] = dict.fromkeys(ProviderName, fallback)
    if settings.push_fcm_service_account_file is not None:
        account = ServiceAccount.from_json(settings.push_fcm_service_account_file.read_text())
        providers[ProviderName.FCM] = FcmProvider(FcmConfig(account, base_url=settings.push_fcm_base_url))
    if settings.push_apns_key_file is not None:
        if not (settings.push_apns_key_id and settings.push_apns_team_id and settings.push_apns_topic):
            raise ValueError("APNs needs INTERLUDE_PUSH_APNS_KEY_ID, _TEAM_ID and _TOPIC with its key file")
        providers[ProviderName.APNS] = ApnsProvider(
            ApnsConfig(
                team_id=settings.push_apns_team_id,
                key_id=settings.push_apns_key_id,
                topic=settings.push_apns_topic,
                private_key=settings.push_apns_key_file.read_text(),
                base_url=settings.push_apns_base_url,
            )
        )
    if settings.push_webpush_vapid_key_file is not None:
        providers[ProviderName.WEBPUSH] = WebPushProvider(
            WebPushConfig(
                vapid_subject=settings.push_webpush_subject,
                vapid_private_key=settings.push_webpush_vapid_key_file.read_text().strip(),
            )
        )
    if settings.push_expo_enabled:
        providers[ProviderName.EXPO] = ExpoProvider(
            ExpoConfig(base_url=settings.push_expo_base_url, access_token=settings.push_expo_access_token)
        )
    unconfigured = sorted(name.value for name, p in providers.items() if p is fallback)
    if unconfigured and settings.is_production:
        log.warning("push.unconfigured", extra={"platforms": unconfigured})
    return providers


async def close_providers(providers: dict[ProviderName, PushProvider]) -> None:
    for provider in {id(p): p for p in providers.values()}.values():
        await provider.aclose()
