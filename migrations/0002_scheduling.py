from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from api.domain.prompt.models import PromptStatus
from api.domain.push.models import MessageStatus, ProviderName
from api.domain.treatment.models import CourseStatus, SessionStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Device',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('models.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='devices', on_delete=OnDelete.RESTRICT)),
                ('patient', fields.ForeignKeyField('models.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='devices', on_delete=OnDelete.CASCADE)),
                ('provider', fields.CharEnumField(description='FCM: FCM\nAPNS: APNS\nWEBPUSH: WEBPUSH\nEXPO: EXPO', enum_type=ProviderName, max_length=16)),
                ('token', fields.TextField(unique=False)),
                ('token_hash', fields.CharField(max_length=64)),
                ('platform', fields.CharField(null=True, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('disabled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('disabled_reason', fields.CharField(null=True, max_length=64)),
            ],
            options={'table': 'device', 'app': 'models', 'unique_together': (('provider', 'token_hash'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Prompt',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('models.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='prompts', on_delete=OnDelete.RESTRICT)),
                ('patient', fields.ForeignKeyField('models.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='prompts', on_delete=OnDelete.CASCADE)),
                ('plan_id', fields.UUIDField()),
                ('rule_id', fields.CharField(max_length=64)),
                ('anchor', fields.CharField(max_length=64)),
                ('session_id', fields.UUIDField(null=True)),
                ('instrument', fields.CharField(max_length=32)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('deliver_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('push', fields.BooleanField(default=True)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('respects_quiet_hours', fields.BooleanField(default=True)),
                ('reminder_minutes', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharEnumField(default=PromptStatus.SCHEDULED, description='SCHEDULED: SCHEDULED\nSENT: SENT\nDELIVERED: DELIVERED\nOPENED: OPENED\nANSWERED: ANSWERED\nEXPIRED: EXPIRED\nCANCELLED: CANCELLED', enum_type=PromptStatus, max_length=16)),
                ('late', fields.BooleanField(default=False)),
                ('reminders_sent', fields.SmallIntField(default=0)),
                ('next_reminder_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('opened_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('answered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expired_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'prompt', 'app': 'models', 'unique_together': (('patient_id', 'rule_id', 'anchor'),), 'indexes': [Index(fields=['status', 'deliver_at']), Index(fields=['status', 'expires_at']), Index(fields=['patient_id', 'due_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PromptPlan',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('models.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='prompt_plans', on_delete=OnDelete.RESTRICT)),
                ('family_id', fields.UUIDField()),
                ('name', fields.CharField(max_length=200)),
                ('version', fields.IntField()),
                ('is_default', fields.BooleanField(default=False)),
                ('is_current', fields.BooleanField(default=True)),
                ('rules', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'prompt_plan', 'app': 'models', 'unique_together': (('family_id', 'version'),), 'pk_attr': 'id', 'table_description': "One version of a clinic's plan. A change writes a new version, and enrolled patients move to it."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PushMessage',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic_id', fields.UUIDField()),
                ('prompt', fields.ForeignKeyField('models.Prompt', source_field='prompt_id', db_constraint=True, to_field='id', related_name='push_messages', on_delete=OnDelete.CASCADE)),
                ('device', fields.ForeignKeyField('models.Device', source_field='device_id', db_constraint=True, to_field='id', related_name='push_messages', on_delete=OnDelete.CASCADE)),
                ('sequence', fields.SmallIntField(default=0)),
                ('status', fields.CharEnumField(default=MessageStatus.PENDING, description='PENDING: PENDING\nCLAIMED: CLAIMED\nACCEPTED: ACCEPTED\nDEAD_TOKEN: DEAD_TOKEN\nFAILED: FAILED\nDROPPED: DROPPED', enum_type=MessageStatus, max_length=16)),
                ('attempts', fields.SmallIntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('provider_message_id', fields.CharField(null=True, max_length=200)),
                ('error_class', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('receipt_checked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'push_message', 'app': 'models', 'unique_together': (('prompt_id', 'device_id', 'sequence'),), 'indexes': [Index(fields=['status', 'next_attempt_at']), Index(fields=['status', 'lease_until'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TreatmentCourse',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('models.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='courses', on_delete=OnDelete.RESTRICT)),
                ('patient', fields.ForeignKeyField('models.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='courses', on_delete=OnDelete.CASCADE)),
                ('indication', fields.CharField(null=True, max_length=200)),
                ('status', fields.CharEnumField(default=CourseStatus.ACTIVE, description='ACTIVE: ACTIVE\nCOMPLETED: COMPLETED', enum_type=CourseStatus, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'treatment_course', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='InfusionSession',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('models.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.RESTRICT)),
                ('patient', fields.ForeignKeyField('models.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('course', fields.ForeignKeyField('models.TreatmentCourse', source_field='course_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('planned_duration_minutes', fields.IntField()),
                ('status', fields.CharEnumField(default=SessionStatus.SCHEDULED, description='SCHEDULED: SCHEDULED\nCOMPLETED: COMPLETED\nCANCELLED: CANCELLED', enum_type=SessionStatus, max_length=16)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('dose_mg', fields.DecimalField(null=True, max_digits=7, decimal_places=2)),
                ('notes', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'infusion_session', 'app': 'models', 'indexes': [Index(fields=['patient_id', 'starts_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Patient',
            name='enrolled_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Patient',
            name='plan_family_id',
            field=fields.UUIDField(null=True),
        ),
    ]
