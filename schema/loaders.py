"""DataLoaders, created per request so that caches never outlive it or cross actors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from strawberry.dataloader import DataLoader

from api.domain.account.models import Account
from api.domain.diary.models import DiaryEntry
from api.domain.patient.models import Patient
from api.domain.patient.overview import Overview

if TYPE_CHECKING:
    from schema.context import Context

V = TypeVar("V")


def _by_key(
    fetch: Callable[[list[UUID]], Awaitable[dict[UUID, V]]],
) -> Callable[[Sequence[UUID]], Awaitable[list[V | None]]]:
    async def load(keys: Sequence[UUID]) -> list[V | None]:
        found = await fetch(list(keys))
        return [found.get(k) for k in keys]

    return load


class Loaders:
    def __init__(self, context: Context) -> None:
        self._context = context
        self.latest_entry: DataLoader[UUID, DiaryEntry | None] = DataLoader(_by_key(self._latest_entries))
        self.patient_of_account: DataLoader[UUID, Patient | None] = DataLoader(_by_key(self._patients_of_accounts))
        self.account: DataLoader[UUID, Account | None] = DataLoader(_by_key(self._accounts))
        self.overview: DataLoader[UUID, Overview | None] = DataLoader(_by_key(self._overviews))

    async def _latest_entries(self, patient_ids: list[UUID]) -> dict[UUID, DiaryEntry]:
        ctx = self._context
        return await ctx.services.overview.latest_entries(ctx.require_actor(), patient_ids, now=ctx.now)

    async def _patients_of_accounts(self, account_ids: list[UUID]) -> dict[UUID, Patient]:
        ctx = self._context
        return await ctx.services.patients.by_account_ids(ctx.require_actor(), account_ids)

    async def _accounts(self, account_ids: list[UUID]) -> dict[UUID, Account]:
        ctx = self._context
        return await ctx.services.accounts.by_ids(ctx.require_actor(), account_ids)

    async def _overviews(self, patient_ids: list[UUID]) -> dict[UUID, Overview]:
        ctx = self._context
        return await ctx.services.overview.overviews(ctx.require_actor(), patient_ids, now=ctx.now)
