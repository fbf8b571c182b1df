from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from api.domain.alert.models import AlertStatus, Severity
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_scheduling')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Alert',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('models.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='alerts', on_delete=OnDelete.RESTRICT)),
                ('patient', fields.ForeignKeyField('models.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='alerts', on_delete=OnDelete.CASCADE)),
                ('rule_id', fields.CharField(max_length=64)),
                ('rule_version', fields.IntField()),
                ('severity', fields.CharEnumField(description='CRITICAL: CRITICAL\nHIGH: HIGH\nMEDIUM: MEDIUM\nLOW: LOW', enum_type=Severity, max_length=16)),
                ('status', fields.CharEnumField(default=AlertStatus.OPEN, description='OPEN: OPEN\nACKNOWLEDGED: ACKNOWLEDGED\nRESOLVED: RESOLVED', enum_type=AlertStatus, max_length=16)),
                ('episode', fields.CharField(max_length=80)),
                ('open_key', fields.CharField(null=True, unique=True, max_length=200)),
                ('triggers', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('details', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('raised_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('acknowledged_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('acknowledged_by_id', fields.UUIDField(null=True)),
                ('resolved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('resolved_by_id', fields.UUIDField(null=True)),
                ('escalated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'alert', 'app': 'models', 'indexes': [Index(fields=['clinic_id', 'status', 'raised_at']), Index(fields=['patient_id', 'raised_at']), Index(fields=['status', 'severity'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AlertEvent',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('alert', fields.ForeignKeyField('models.Alert', source_field='alert_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.CASCADE)),
                ('action', fields.CharField(max_length=32)),
                ('actor_id', fields.UUIDField(null=True)),
                ('note', fields.TextField(null=True, unique=False)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'alert_event', 'app': 'models', 'indexes': [Index(fields=['alert_id', 'at'])], 'pk_attr': 'id', 'table_description': "One step in an alert's history: raised, retriggered, acknowledged, escalated, resolved."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ClinicAlertSettings',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.OneToOneField('models.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='alert_settings', on_delete=OnDelete.CASCADE)),
                ('thresholds', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('escalation_minutes', fields.IntField(null=True)),
                ('crisis_message', fields.TextField(null=True, unique=False)),
                ('version', fields.IntField(default=1)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_by_id', fields.UUIDField(null=True)),
            ],
            options={'table': 'clinic_alert_settings', 'app': 'models', 'pk_attr': 'id', 'table_description': "A clinic's overrides of the default alert thresholds, escalation delay and crisis resources."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='QuestionnaireResponse',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('models.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='questionnaire_responses', on_delete=OnDelete.RESTRICT)),
                ('patient', fields.ForeignKeyField('models.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='questionnaire_responses', on_delete=OnDelete.CASCADE)),
                ('client_id', fields.UUIDField()),
                ('client_hash', fields.CharField(max_length=64)),
                ('instrument', fields.CharField(max_length=32)),
                ('instrument_version', fields.CharField(max_length=16)),
                ('answers', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('score', fields.SmallIntField(null=True)),
                ('band', fields.CharField(null=True, max_length=32)),
                ('derived', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('prompt_id', fields.UUIDField(null=True)),
                ('authored_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('utc_offset_minutes', fields.SmallIntField()),
                ('deleted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'questionnaire_response', 'app': 'models', 'unique_together': (('patient_id', 'client_id'),), 'indexes': [Index(fields=['patient_id', 'instrument', 'authored_at']), Index(fields=['clinic_id', 'authored_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
