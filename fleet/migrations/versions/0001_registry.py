"""registry: AEDs, cabinets, managers, municipalities, declarations, telemetry, events

Revision ID: 0001_registry
Revises:
Create Date: 2026-11-27

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel

import fleet.db_types


# revision identifiers, used by Alembic.
revision: str = '0001_registry'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""

    op.create_table('manager',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('manager', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_manager_name'), ['name'], unique=True)

    op.create_table('municipality',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('population', sa.Integer(), nullable=True),
    sa.Column('boundary_geojson', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('municipality', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_municipality_name'), ['name'], unique=True)

    op.create_table('aed',
    sa.Column('serial', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('make', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('indoor', sa.Boolean(), nullable=True),
    sa.Column('location_hint', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('access', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('opening_hours', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('cabinet_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('pads_expiry', sa.Date(), nullable=True),
    sa.Column('battery_expiry', sa.Date(), nullable=True),
    sa.Column('out_of_service', sa.Boolean(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('municipality_id', sa.Integer(), nullable=True),
    sa.Column('manager_id', sa.Integer(), nullable=True),
    sa.Column('in_use_incident', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('created_at', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['manager_id'], ['manager.id'], ),
    sa.ForeignKeyConstraint(['municipality_id'], ['municipality.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('aed', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aed_manager_id'), ['manager_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_aed_municipality_id'), ['municipality_id'], unique=False)

    op.create_table('cabinet',
    sa.Column('device_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('aed_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('register_map', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['aed_id'], ['aed.id'], ),
    sa.PrimaryKeyConstraint('device_id')
    )
    with op.batch_alter_table('cabinet', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cabinet_aed_id'), ['aed_id'], unique=True)

    op.create_table('readinessdeclaration',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('aed_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('declared_at', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('declared_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('recorded_at', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['aed_id'], ['aed.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('readinessdeclaration', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_readinessdeclaration_aed_id'), ['aed_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_readinessdeclaration_declared_at'), ['declared_at'], unique=False)

    op.create_table('deviceevent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('ts', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('cmd_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('received_at', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['cabinet.device_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('device_id', 'seq', name='uq_device_event_seq')
    )
    with op.batch_alter_table('deviceevent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deviceevent_device_id'), ['device_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deviceevent_ts'), ['ts'], unique=False)

    op.create_table('telemetrystate',
    sa.Column('device_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('ts', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('received_at', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=True),
    sa.Column('battery_pct', sa.Integer(), nullable=True),
    sa.Column('battery_expiry', sa.Date(), nullable=True),
    sa.Column('pads_expiry', sa.Date(), nullable=True),
    sa.Column('self_test', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('self_test_ts', fleet.db_types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('door_open', sa.Boolean(), nullable=True),
    sa.Column('door_open_since', fleet.db_types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('aed_present', sa.Boolean(), nullable=True),
    sa.Column('temperature_c', sa.Float(), nullable=True),
    sa.Column('heater_on', sa.Boolean(), nullable=True),
    sa.Column('power', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('source_fault', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['cabinet.device_id'], ),
    sa.PrimaryKeyConstraint('device_id')
    )



def downgrade() -> None:
    """Downgrade schema."""

    op.drop_table('telemetrystate')
    with op.batch_alter_table('deviceevent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deviceevent_ts'))
        batch_op.drop_index(batch_op.f('ix_deviceevent_device_id'))

    op.drop_table('deviceevent')
    with op.batch_alter_table('readinessdeclaration', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_readinessdeclaration_declared_at'))
        batch_op.drop_index(batch_op.f('ix_readinessdeclaration_aed_id'))

    op.drop_table('readinessdeclaration')
    with op.batch_alter_table('cabinet', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cabinet_aed_id'))

    op.drop_table('cabinet')
    with op.batch_alter_table('aed', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_aed_municipality_id'))
        batch_op.drop_index(batch_op.f('ix_aed_manager_id'))

    op.drop_table('aed')
    with op.batch_alter_table('municipality', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_municipality_name'))

    op.drop_table('municipality')
    with op.batch_alter_table('manager', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_manager_name'))

    op.drop_table('manager')

