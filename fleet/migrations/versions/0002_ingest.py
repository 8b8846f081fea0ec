"""ingest: ledger, dead letters, readiness history, outbox

Revision ID: 0002_ingest
Revises: 0001_registry
Create Date: 2026-11-27

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel

import fleet.db_types


# revision identifiers, used by Alembic.
revision: str = '0002_ingest'
down_revision: Union[str, Sequence[str], None] = '0001_registry'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('applied_message',
    sa.Column('device_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('applied_at', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('device_id', 'seq')
    )
    with op.batch_alter_table('applied_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_applied_message_applied_at'), ['applied_at'], unique=False)

    op.create_table('dead_letter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('received_at', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('topic', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('device_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('payload_size', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dead_letter', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dead_letter_device_id'), ['device_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dead_letter_reason'), ['reason'], unique=False)
        batch_op.create_index(batch_op.f('ix_dead_letter_received_at'), ['received_at'], unique=False)

    op.create_table('aed_readiness',
    sa.Column('aed_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('reasons', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('warnings', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('since', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('evaluated_at', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['aed_id'], ['aed.id'], ),
    sa.PrimaryKeyConstraint('aed_id')
    )
    with op.batch_alter_table('aed_readiness', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aed_readiness_state'), ['state'], unique=False)

    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('aed_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('manager_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('dedup_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', fleet.db_types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', fleet.db_types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.ForeignKeyConstraint(['aed_id'], ['aed.id'], ),
    sa.ForeignKeyConstraint(['manager_id'], ['manager.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_aed_id'), ['aed_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_dedup_key'), ['dedup_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_manager_id'), ['manager_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_status'), ['status'], unique=False)

    op.create_table('readiness_transition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('aed_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('from_state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True),
    sa.Column('to_state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('reasons', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('added', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('cause', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.ForeignKeyConstraint(['aed_id'], ['aed.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('readiness_transition', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_readiness_transition_aed_id'), ['aed_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_readiness_transition_at'), ['at'], unique=False)

    with op.batch_alter_table('telemetrystate', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_ts', fleet.db_types.UtcDateTime(timezone=True), nullable=True))
        # The contract allows seq up to 2**63 - 1.
        batch_op.alter_column('seq', existing_type=sa.Integer(), type_=sa.BigInteger(),
                              existing_nullable=False)

    with op.batch_alter_table('deviceevent', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.Integer(), type_=sa.BigInteger(),
                              existing_nullable=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('deviceevent', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.BigInteger(), type_=sa.Integer(),
                              existing_nullable=False)

    with op.batch_alter_table('telemetrystate', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.BigInteger(), type_=sa.Integer(),
                              existing_nullable=False)
        batch_op.drop_column('status_ts')

    with op.batch_alter_table('readiness_transition', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_readiness_transition_at'))
        batch_op.drop_index(batch_op.f('ix_readiness_transition_aed_id'))

    op.drop_table('readiness_transition')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_status'))
        batch_op.drop_index(batch_op.f('ix_notification_manager_id'))
        batch_op.drop_index(batch_op.f('ix_notification_dedup_key'))
        batch_op.drop_index(batch_op.f('ix_notification_created_at'))
        batch_op.drop_index(batch_op.f('ix_notification_aed_id'))

    op.drop_table('notification')
    with op.batch_alter_table('aed_readiness', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_aed_readiness_state'))

    op.drop_table('aed_readiness')
    with op.batch_alter_table('dead_letter', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dead_letter_received_at'))
        batch_op.drop_index(batch_op.f('ix_dead_letter_reason'))
        batch_op.drop_index(batch_op.f('ix_dead_letter_device_id'))

    op.drop_table('dead_letter')
    with op.batch_alter_table('applied_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_applied_message_applied_at'))

    op.drop_table('applied_message')
