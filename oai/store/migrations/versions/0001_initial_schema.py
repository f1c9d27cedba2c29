"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-12-01 19:41:30.352897
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('foreign_format',
    sa.Column('prefix', sa.String(length=64), nullable=False),
    sa.Column('namespace', sa.String(length=512), nullable=False),
    sa.Column('schema', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('prefix', name=op.f('pk_foreign_format'))
    )
    op.create_table('oai_set',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('spec', sa.String(length=512), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oai_set')),
    sa.UniqueConstraint('spec', name=op.f('uq_oai_set_spec'))
    )
    op.create_table('setting',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_setting'))
    )
    op.create_table('source',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('base_url', sa.Text(), nullable=False),
    sa.Column('prefix', sa.String(length=64), nullable=False),
    sa.Column('set_spec', sa.String(length=512), nullable=True),
    sa.Column('every_seconds', sa.Integer(), nullable=True),
    sa.Column('keep_upstream_identifiers', sa.Boolean(), nullable=False),
    sa.Column('detect_deletions', sa.Boolean(), nullable=False),
    sa.Column('granularity', sa.String(length=32), nullable=True),
    sa.Column('deleted_record', sa.String(length=16), nullable=True),
    sa.Column('repository_name', sa.Text(), nullable=True),
    sa.Column('metadata_namespace', sa.String(length=512), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('last_complete_response_date', sa.String(length=32), nullable=True),
    sa.Column('next_due', sa.DateTime(), nullable=True),
    sa.Column('lease_owner', sa.String(length=256), nullable=True),
    sa.Column('lease_expires', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_source')),
    sa.UniqueConstraint('name', name=op.f('uq_source_name'))
    )
    op.create_table('harvest_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('started', sa.DateTime(), nullable=False),
    sa.Column('ended', sa.DateTime(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('full', sa.Boolean(), nullable=False),
    sa.Column('from_date', sa.String(length=32), nullable=True),
    sa.Column('response_date', sa.String(length=32), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('seen', sa.Integer(), nullable=False),
    sa.Column('new', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('deleted', sa.Integer(), nullable=False),
    sa.Column('quarantined', sa.Integer(), nullable=False),
    sa.Column('complete_list_size', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('worker', sa.String(length=256), nullable=True),
    sa.ForeignKeyConstraint(['source_id'], ['source.id'], name=op.f('fk_harvest_run_source_id_source'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_harvest_run'))
    )
    with op.batch_alter_table('harvest_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_harvest_run_source_id'), ['source_id'], unique=False)

    op.create_table('record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identifier', sa.String(length=512), nullable=False),
    sa.Column('datestamp', sa.DateTime(), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('set_specs', sa.Text(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('citation', sa.Text(), nullable=True),
    sa.Column('source_id', sa.Integer(), nullable=True),
    sa.Column('upstream_identifier', sa.String(length=512), nullable=True),
    sa.Column('upstream_datestamp', sa.String(length=32), nullable=True),
    sa.Column('harvested_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['source_id'], ['source.id'], name=op.f('fk_record_source_id_source'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record')),
    sa.UniqueConstraint('identifier', name=op.f('uq_record_identifier'))
    )
    with op.batch_alter_table('record', schema=None) as batch_op:
        batch_op.create_index('ix_record_datestamp_id', ['datestamp', 'id'], unique=False)
        batch_op.create_index('ix_record_source_upstream', ['source_id', 'upstream_identifier'], unique=False)

    op.create_table('harvest_checkpoint',
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('resumption_token', sa.Text(), nullable=True),
    sa.Column('cursor', sa.Integer(), nullable=False),
    sa.Column('from_date', sa.String(length=32), nullable=True),
    sa.Column('last_upstream_datestamp', sa.String(length=32), nullable=True),
    sa.Column('updated', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['harvest_run.id'], name=op.f('fk_harvest_checkpoint_run_id_harvest_run'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['source.id'], name=op.f('fk_harvest_checkpoint_source_id_source'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('source_id', name=op.f('pk_harvest_checkpoint'))
    )
    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('upstream_identifier', sa.String(length=512), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['harvest_run.id'], name=op.f('fk_quarantine_run_id_harvest_run'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_id'], ['source.id'], name=op.f('fk_quarantine_source_id_source'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine'))
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_source_id'), ['source_id'], unique=False)

    op.create_table('record_metadata',
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=64), nullable=False),
    sa.Column('xml', sa.LargeBinary(), nullable=True),
    sa.Column('about', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['record_id'], ['record.id'], name=op.f('fk_record_metadata_record_id_record'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('record_id', 'prefix', name=op.f('pk_record_metadata'))
    )
    op.create_table('record_set',
    sa.Column('set_id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('datestamp', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['record.id'], name=op.f('fk_record_set_record_id_record'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['set_id'], ['oai_set.id'], name=op.f('fk_record_set_set_id_oai_set'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('set_id', 'record_id', name=op.f('pk_record_set'))
    )
    with op.batch_alter_table('record_set', schema=None) as batch_op:
        batch_op.create_index('ix_record_set_record', ['record_id'], unique=False)
        batch_op.create_index('ix_record_set_set_datestamp', ['set_id', 'datestamp', 'record_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('record_set', schema=None) as batch_op:
        batch_op.drop_index('ix_record_set_set_datestamp')
        batch_op.drop_index('ix_record_set_record')

    op.drop_table('record_set')
    op.drop_table('record_metadata')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_source_id'))

    op.drop_table('quarantine')
    op.drop_table('harvest_checkpoint')
    with op.batch_alter_table('record', schema=None) as batch_op:
        batch_op.drop_index('ix_record_source_upstream')
        batch_op.drop_index('ix_record_datestamp_id')

    op.drop_table('record')
    with op.batch_alter_table('harvest_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_harvest_run_source_id'))

    op.drop_table('harvest_run')
    op.drop_table('source')
    op.drop_table('setting')
    op.drop_table('oai_set')
    op.drop_table('foreign_format')
