from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from api.domain.actor import Role
from api.domain.patient.models import PatientStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic_id', fields.UUIDField(db_index=True)),
                ('actor_id', fields.UUIDField(null=True)),
                ('actor_role', fields.CharField(max_length=16)),
                ('action', fields.CharField(max_length=64)),
                ('patient_id', fields.UUIDField(null=True)),
                ('object_id', fields.UUIDField(null=True)),
                ('operation', fields.CharField(null=True, max_length=100)),
                ('request_id', fields.CharField(null=True, max_length=64)),
                ('ip', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'audit_event', 'app': 'models', 'indexes': [Index(fields=['clinic_id', 'created_at', 'id']), Index(fields=['patient_id', 'created_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuditSubject',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('event', fields.ForeignKeyField('models.AuditEvent', source_field='event_id', db_constraint=True, to_field='id', related_name='subjects', on_delete=OnDelete.CASCADE)),
                ('patient_id', fields.UUIDField(db_index=True)),
            ],
            options={'table': 'audit_subject', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One row per patient an event covers (a list read covers many).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Clinic',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'clinic', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Account',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('models.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='accounts', on_delete=OnDelete.RESTRICT)),
                ('role', fields.CharEnumField(description='PATIENT: PATIENT\nCLINICIAN: CLINICIAN\nADMIN: ADMIN\nSYSTEM: SYSTEM', enum_type=Role, max_length=16)),
                ('email', fields.CharField(unique=True, max_length=320)),
                ('password_hash', fields.CharField(max_length=200)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_login_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'account', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Patient',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('models.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='patients', on_delete=OnDelete.RESTRICT)),
                ('account', fields.OneToOneField('models.Account', source_field='account_id', null=True, db_constraint=True, to_field='id', related_name='patient', on_delete=OnDelete.RESTRICT)),
                ('display_name', fields.CharField(max_length=200)),
                ('search_name', fields.CharField(db_index=True, max_length=200)),
                ('timezone', fields.CharField(max_length=64)),
                ('diary_time', fields.CharField(default='20:00', max_length=5)),
                ('quiet_hours_start', fields.CharField(default='21:30', max_length=5)),
                ('quiet_hours_end', fields.CharField(default='08:00', max_length=5)),
                ('notifications_enabled', fields.BooleanField(default=True)),
                ('status', fields.CharEnumField(default=PatientStatus.INVITED, description='INVITED: INVITED\nACTIVE: ACTIVE\nPAUSED: PAUSED\nDISCHARGED: DISCHARGED\nERASED: ERASED', enum_type=PatientStatus, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('activated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'patient', 'app': 'models', 'indexes': [Index(fields=['clinic_id', 'search_name'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DiaryEntry',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('models.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='diary_entries', on_delete=OnDelete.RESTRICT)),
                ('patient', fields.ForeignKeyField('models.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='diary_entries', on_delete=OnDelete.CASCADE)),
                ('client_id', fields.UUIDField()),
                ('client_hash', fields.CharField(max_length=64)),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('utc_offset_minutes', fields.SmallIntField()),
                ('pain_now', fields.SmallIntField(null=True)),
                ('pain_worst', fields.SmallIntField(null=True)),
                ('pain_average', fields.SmallIntField(null=True)),
                ('pain_locations', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('sleep_hours', fields.DecimalField(null=True, max_digits=4, decimal_places=2)),
                ('sleep_quality', fields.SmallIntField(null=True)),
                ('mood', fields.SmallIntField(null=True)),
                ('side_effects', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('rescue_medication', fields.BooleanField(null=True)),
                ('note', fields.TextField(null=True, unique=False)),
                ('prompt_id', fields.UUIDField(null=True)),
                ('version', fields.IntField(default=1)),
                ('deleted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'diary_entry', 'app': 'models', 'unique_together': (('patient_id', 'client_id'),), 'indexes': [Index(fields=['patient_id', 'recorded_at', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DiaryEntryRevision',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('entry', fields.ForeignKeyField('models.DiaryEntry', source_field='entry_id', db_constraint=True, to_field='id', related_name='revisions', on_delete=OnDelete.CASCADE)),
                ('version', fields.IntField()),
                ('snapshot', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('reason', fields.CharField(max_length=32)),
                ('changed_by_id', fields.UUIDField(null=True)),
                ('changed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'diary_entry_revision', 'app': 'models', 'unique_together': (('entry_id', 'version'),), 'pk_attr': 'id', 'table_description': 'The state of an entry before an edit or deletion, and who made the change.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Invite',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('models.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='invites', on_delete=OnDelete.RESTRICT)),
                ('patient', fields.ForeignKeyField('models.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='invites', on_delete=OnDelete.CASCADE)),
                ('created_by', fields.ForeignKeyField('models.Account', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='invites_issued', on_delete=OnDelete.SET_NULL)),
                ('code_hash', fields.CharField(unique=True, max_length=64)),
                ('email_hash', fields.CharField(null=True, max_length=64)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'invite', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RefreshToken',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='refresh_tokens', on_delete=OnDelete.CASCADE)),
                ('family_id', fields.UUIDField(db_index=True)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('rotated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'refresh_token', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ThrottleBucket',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=100)),
                ('failures', fields.IntField(default=0)),
                ('window_started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'throttle_bucket', 'app': 'models', 'pk_attr': 'key', 'table_description': 'Failure counter for one key (a hashed email or a client address), shared by every API replica.'},
            bases=['Model'],
        ),
    ]
