"""One module per push provider, all keeping the `PushProvider` contract of `base`."""

from api.domain.push.providers.apns import ApnsConfig, ApnsProvider
from api.domain.push.providers.base import Outcome, PushMessage, PushProvider, SendResult
from api.domain.push.providers.expo import ExpoConfig, ExpoProvider, ReceiptCheckFailed
from api.domain.push.providers.fcm import FcmConfig, FcmProvider, ServiceAccount
from api.domain.push.providers.log import LogConfig, LogProvider
from api.domain.push.providers.webpush import InvalidSubscription, WebPushConfig, WebPushProvider, parse_subscription

__all__ = [
    "ApnsConfig",
    "ApnsProvider",
    "ExpoConfig",
    "ExpoProvider",
    "FcmConfig",
    "FcmProvider",
    "InvalidSubscription",
    "LogConfig",
    "LogProvider",
    "Outcome",
    "PushMessage",
    "PushProvider",
    "ReceiptCheckFailed",
    "SendResult",
    "ServiceAccount",
    "WebPushConfig",
    "WebPushProvider",
    "parse_subscription",
]
