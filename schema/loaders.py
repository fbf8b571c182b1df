"""DataLoaders, created per request so that caches never outlive it or cross actors."""

from __future__ import annotations

import weakref
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
    owner: weakref.ref[Context], fetch: Callable[[Context, list[UUID]], Awaitable[dict[UUID, V]]]
) -> Callable[[Sequence[UUID]], Awaitable[list[V | None]]]:
    async def load(keys: Sequence[UUID]) -> list[V | None]:
        context = owner()
        if context is None:  # a batch is only ever run within its request
            raise RuntimeError("the request of this DataLoader has ended")
        found = await fetch(context, list(keys))
        return [found.get(k) for k in keys]

    return load


class Loaders:
    """A request's DataLoaders, held by its context. They hold the context weakly and their batch functions are not
    their own methods, so nothing refers back: when the request ends they are freed with it at once, not left in a
    reference cycle for the garbage collector (bench/README.md)."""

    def __init__(self, context: Context) -> None:
        owner = weakref.ref(context)
        self.latest_entry: DataLoader[UUID, DiaryEntry | None] = DataLoader(_by_key(owner, _latest_entries))
        self.patient_of_account: DataLoader[UUID, Patient | None] = DataLoader(_by_key(owner, _patients_of_accounts))
        self.account: DataLoader[UUID, Account | None] = DataLoader(_by_key(owner, _accounts))
        self.overview: DataLoader[UUID, Overview | None] = DataLoader(_by_key(owner, _overviews))


async def _latest_entries(ctx: Context, patient_ids: list[UUID]) -> dict[UUID, DiaryEntry]:
    return await ctx.services.overview.latest_entries(ctx.require_actor(), patient_ids, now=ctx.now)


async def _patients_of_accounts(ctx: Context, account_ids: list[UUID]) -> dict[UUID, Patient]:
    return await ctx.services.patients.by_account_ids(ctx.require_actor(), account_ids)


async def _accounts(ctx: Context, account_ids: list[UUID]) -> dict[UUID, Account]:
    return await ctx.services.accounts.by_ids(ctx.require_actor(), account_ids)


async def _overviews(ctx: Context, patient_ids: list[UUID]) -> dict[UUID, Overview]:
    return await ctx.services.overview.overviews(ctx.require_actor(), patient_ids, now=ctx.now)
