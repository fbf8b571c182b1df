"""Expo's second step: a ticket says the message was taken, its receipt (minutes later) says whether it went out.

A receipt naming DeviceNotRegistered disables the device; one asking to retry puts the message back in the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from api.domain.push.models import Device, MessageStatus, ProviderName, PushMessage
from api.domain.push.providers.base import Outcome, PushProvider, SendResult
from api.domain.push.providers.expo import ReceiptCheckFailed

# Expo keeps receipts for a day and asks senders to wait a while before fetching them.
RECEIPT_DELAY = timedelta(minutes=15)
RECEIPT_GIVE_UP = timedelta(hours=24)


@runtime_checkable
class ReceiptSource(Protocol):
    async def check_receipts(self, ids: Sequence[str], *, now: datetime) -> dict[str, SendResult]: ...


@dataclass
class ReceiptReport:
    checked: int = 0
    confirmed: int = 0
    dead_tokens: int = 0
    resent: int = 0
    failed: int = 0
    unavailable: int = 0


async def check_receipts(
    providers: Mapping[ProviderName, PushProvider], *, now: datetime, limit: int = 1000
) -> ReceiptReport:
    report = ReceiptReport()
    source: object = providers.get(ProviderName.EXPO)
    if not isinstance(source, ReceiptSource):
        return report  # the `log` provider has no receipts
    rows = await PushMessage.filter(
        status=MessageStatus.ACCEPTED,
        receipt_checked_at=None,
        provider_message_id__not_isnull=True,
        sent_at__lte=now - RECEIPT_DELAY,
        device__provider=ProviderName.EXPO,
    ).limit(limit)
    if not rows:
        return report
    try:
        receipts = await source.check_receipts([r.provider_message_id for r in rows if r.provider_message_id], now=now)
    except ReceiptCheckFailed:
        report.unavailable = len(rows)  # nothing learnt; the next pass asks again
        return report
    for row in rows:
        receipt = receipts.get(row.provider_message_id or "")
        if receipt is None and row.sent_at is not None and now - row.sent_at < RECEIPT_GIVE_UP:
            continue  # not ready yet
        report.checked += 1
        await _apply(row, receipt, now, report)
    return report


async def _apply(row: PushMessage, receipt: SendResult | None, now: datetime, report: ReceiptReport) -> None:
    row.receipt_checked_at, row.updated_at = now, now
    if receipt is None or receipt.outcome is Outcome.ACCEPTED:
        report.confirmed += receipt is not None
    elif receipt.outcome is Outcome.DEAD_TOKEN:
        row.status, row.error_class = MessageStatus.DEAD_TOKEN, receipt.error_class
        await Device.filter(id=row.device_id, disabled_at=None).update(
            disabled_at=now, disabled_reason=receipt.error_class
        )
        report.dead_tokens += 1
    elif receipt.outcome is Outcome.RETRY:
        # Back into the outbox; the dispatcher drops it if the prompt has been answered or has closed meanwhile.
        row.status, row.error_class, row.next_attempt_at = MessageStatus.PENDING, receipt.error_class, now
        row.receipt_checked_at = None
        report.resent += 1
    else:
        row.status, row.error_class = MessageStatus.FAILED, receipt.error_class
        report.failed += 1
    await row.save()
