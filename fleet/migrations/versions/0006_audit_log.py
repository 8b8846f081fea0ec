"""governance: audit log, incident summaries, questionnaires that can be detached

Revision ID: 0006_audit_log
Revises: 0005_sweep_mark
Create Date: 2026-11-28

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel

import fleet.db_types


# revision identifiers, used by Alembic.
revision: str = '0006_audit_log'
down_revision: Union[str, Sequence[str], None] = '0005_sweep_mark'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The audit log is append-only: the database itself refuses to change an entry. Deleting stays
# possible for the retention job.
SQLITE_TRIGGER = """
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: entries are never changed'); END
"""
POSTGRES_FUNCTION = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only: entries are never changed'; END $$
"""
POSTGRES_TRIGGER = """
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
"""


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', fleet.db_types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('object_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('changes', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_actor'), ['actor'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_object_id'), ['object_id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)

    op.create_table('incident_summary',
    sa.Column('incident_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('pc4', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=True),
    sa.Column('municipality', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('record', sa.Text(), nullable=True),
    sa.Column('coarsened_at', fleet.db_types.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('incident_id'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('incident_summary', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_summary_coarsened_at'), ['coarsened_at'], unique=False)

    # Questionnaires and aftercare requests outlive their link to the responder.
    with op.batch_alter_table('questionnaire', schema=None) as batch_op:
        batch_op.alter_column('responder_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
                              nullable=True)
    with op.batch_alter_table('aftercare_task', schema=None) as batch_op:
        batch_op.alter_column('responder_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
                              nullable=True)


def downgrade() -> None:
    """Downgrade schema."""
    # The older schema cannot hold answers without their responder: those detached go.
    op.execute("DELETE FROM aftercare_task WHERE responder_id IS NULL")
    op.execute("DELETE FROM questionnaire WHERE responder_id IS NULL")
    with op.batch_alter_table('aftercare_task', schema=None) as batch_op:
        batch_op.alter_column('responder_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
                              nullable=False)
    with op.batch_alter_table('questionnaire', schema=None) as batch_op:
        batch_op.alter_column('responder_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
                              nullable=False)

    with op.batch_alter_table('incident_summary', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_summary_coarsened_at'))
    op.drop_table('incident_summary')

    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_object_id'))
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))
        batch_op.drop_index(batch_op.f('ix_audit_log_actor'))
        batch_op.drop_index(batch_op.f('ix_audit_log_action'))
    op.drop_table('audit_log')  # its trigger goes with it
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
