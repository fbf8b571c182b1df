"""A patient's push targets. A token registered again moves to the new account: phones change hands."""

from __future__ import annotations

from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.domain.account.tokens import sha256_hex
from api.domain.actor import Actor
from api.domain.errors import BadInput
from api.domain.patient.access import lock_patient, reachable_patient, require_not_gone, require_patient
from api.domain.patient.models import Patient
from api.domain.push.models import Device, ProviderName
from api.domain.push.providers.webpush import InvalidSubscription, WebPushConfig, parse_subscription

# Used only to parse: a subscription that can never work is refused at registration, telling the app at once.
# Which push services may be sent to is the configured provider's rule, enforced when it sends.
_SUBSCRIPTION_RULES = WebPushConfig(vapid_subject="", vapid_private_key="")

MAX_TOKEN = 4096
MAX_PLATFORM = 32


async def register(actor: Actor, provider: ProviderName, token: str, platform: str | None, *, now: datetime) -> Device:
    patient = await reachable_patient(actor, require_patient(actor))
    token = token.strip()
    if not 1 <= len(token) <= MAX_TOKEN:
        raise BadInput("token", f"must be 1 to {MAX_TOKEN} characters")
    if platform is not None and len(platform) > MAX_PLATFORM:
        raise BadInput("platform", f"must be at most {MAX_PLATFORM} characters")
    if provider is ProviderName.WEBPUSH:
        _check_subscription(token)
    try:
        return await _register(patient, provider, token, platform, now)
    except IntegrityError:
        # A concurrent registration of the same new token inserted it first: now it exists, and is updated.
        return await _register(patient, provider, token, platform, now)


async def _register(
    patient: Patient, provider: ProviderName, token: str, platform: str | None, now: datetime
) -> Device:
    token_hash = sha256_hex(token)
    async with in_transaction() as conn:
        # An erasure deletes the patient's devices: a token registered while it runs, or after it committed, must not
        # survive it (`lock_patient`). The patient's lock first, in the erasure's order.
        require_not_gone(await lock_patient(patient.id, conn))
        device = (
            await Device.filter(provider=provider, token_hash=token_hash).select_for_update().using_db(conn).first()
        )
        if device is None:
            return await Device.create(
                clinic_id=patient.clinic_id,
                patient_id=patient.id,
                provider=provider,
                token=token,
                token_hash=token_hash,
                platform=platform,
                created_at=now,
                last_seen_at=now,
                using_db=conn,
            )
        # Phones change hands: the token now reaches this patient only. Messages still queued for the previous
        # owner are dropped by the outbox, which checks whose device it is at send time.
        device.clinic_id, device.patient_id = patient.clinic_id, patient.id
        device.platform = platform or device.platform
        device.last_seen_at = now
        device.disabled_at, device.disabled_reason = None, None
        await device.save(using_db=conn)
        return device


async def unregister(actor: Actor, token: str, *, now: datetime) -> bool:
    """Disables the caller's own device with this token; someone else's token is simply not found (False)."""
    patient = await reachable_patient(actor, require_patient(actor))
    changed = await Device.filter(patient_id=patient.id, token_hash=sha256_hex(token.strip()), disabled_at=None).update(
        disabled_at=now, disabled_reason="unregistered"
    )
    return changed > 0


def _check_subscription(token: str) -> None:
    try:
        parse_subscription(token, _SUBSCRIPTION_RULES)
    except InvalidSubscription as exc:
        if exc.error_class == "webpush.endpoint_not_allowed":
            return
        raise BadInput("token", "is not a Web Push subscription (JSON with endpoint and keys)") from exc
