"""Tenants, people who log in, patient profiles, invites and the credentials that go with them."""

from __future__ import annotations

from uuid import UUID, uuid4

from tortoise import fields
from tortoise.models import Model

from api.domain.actor import Role


class Clinic(Model):
    id = fields.UUIDField(primary_key=True, default=uuid4)
    name = fields.CharField(max_length=200)
    created_at = fields.DatetimeField()
    # Clinicians and admins of this clinic must sign in with a TOTP second factor.
    require_staff_otp = fields.BooleanField(default=False)

    class Meta:
        table = "clinic"


class Account(Model):
    id = fields.UUIDField(primary_key=True, default=uuid4)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "models.Clinic", related_name="accounts", on_delete=fields.RESTRICT
    )
    role = fields.CharEnumField(Role, max_length=16)
    # Stored lower-cased; unique across the installation so that login needs no clinic.
    email = fields.CharField(max_length=320, unique=True)
    password_hash = fields.CharField(max_length=200)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()
    last_login_at = fields.DatetimeField(null=True)
    # TOTP second factor (staff): the secret sealed with the installation's key, set at enrolment; confirmed once a
    # first code has been checked; the last accepted time step, so that a code is never accepted twice.
    totp_secret_sealed = fields.TextField(null=True)
    totp_confirmed_at = fields.DatetimeField(null=True)
    totp_last_step = fields.BigIntField(null=True)
    password_changed_at = fields.DatetimeField(null=True)

    clinic_id: UUID

    class Meta:
        table = "account"


class RefreshToken(Model):
    id = fields.UUIDField(primary_key=True, default=uuid4)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="refresh_tokens", on_delete=fields.CASCADE
    )
    family_id = fields.UUIDField(db_index=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    # Set when the token was exchanged for its successor; presenting it again is reuse.
    rotated_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    account_id: UUID

    class Meta:
        table = "refresh_token"


class ThrottleBucket(Model):
    """Failure counter for one key (a hashed email or a client address), shared by every API replica."""

    key = fields.CharField(max_length=100, primary_key=True)
    failures = fields.IntField(default=0)
    window_started_at = fields.DatetimeField()
    locked_until = fields.DatetimeField(null=True)
    # How many times this key has been locked in a row: each lock lasts longer (backoff) until a success resets it.
    lock_count = fields.IntField(default=0)

    class Meta:
        table = "throttle_bucket"
