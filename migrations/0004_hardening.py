from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_clinical')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Account',
            name='password_changed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Account',
            name='totp_confirmed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Account',
            name='totp_last_step',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='Account',
            name='totp_secret_sealed',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='Clinic',
            name='require_staff_otp',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='Patient',
            name='erased_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Patient',
            name='erasure_requested_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Patient',
            name='retained_until',
            field=fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='ThrottleBucket',
            name='lock_count',
            field=fields.IntField(default=0),
        ),
    ]
