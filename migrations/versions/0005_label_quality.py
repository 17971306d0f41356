"""label quality: per-item evidence and influence, reports, reviews, extra opinions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 18:46:25.583421
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('item_quality',
    sa.Column('model_version_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('given_label', sa.String(length=200), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('p_given', sa.Float(), nullable=False),
    sa.Column('other_label', sa.String(length=200), nullable=False),
    sa.Column('p_other', sa.Float(), nullable=False),
    sa.Column('loo_p_given', sa.Float(), nullable=True),
    sa.Column('self_influence', sa.Float(), nullable=True),
    sa.Column('holdout_influence', sa.Float(), nullable=True),
    sa.Column('holdout_loo', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_item_quality_item_id_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], name=op.f('fk_item_quality_model_version_id_model_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_item_quality_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_version_id', 'item_id', name=op.f('pk_item_quality'))
    )
    with op.batch_alter_table('item_quality', schema=None) as batch_op:
        batch_op.create_index('ix_item_quality_item_id', ['item_id'], unique=False)
        batch_op.create_index('ix_item_quality_model_version_holdout_influence', ['model_version_id', 'holdout_influence'], unique=False)
        batch_op.create_index('ix_item_quality_model_version_score', ['model_version_id', 'score'], unique=False)

    op.create_table('label_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('previous_label', sa.String(length=200), nullable=True),
    sa.Column('model_version_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_label_reviews_item_id_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], name=op.f('fk_label_reviews_model_version_id_model_versions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_label_reviews_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_label_reviews_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_label_reviews'))
    )
    with op.batch_alter_table('label_reviews', schema=None) as batch_op:
        batch_op.create_index('ix_label_reviews_item_label', ['item_id', 'label'], unique=False)
        batch_op.create_index(batch_op.f('ix_label_reviews_project_id'), ['project_id'], unique=False)

    op.create_table('quality_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('n_items', sa.Integer(), nullable=False),
    sa.Column('n_holdout', sa.Integer(), nullable=False),
    sa.Column('approx', sa.String(length=20), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('verified_at', sa.DateTime(), nullable=True),
    sa.Column('verify', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], name=op.f('fk_quality_reports_model_version_id_model_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_quality_reports_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_reports')),
    sa.UniqueConstraint('model_version_id', name=op.f('uq_quality_reports_model_version_id'))
    )
    with op.batch_alter_table('quality_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quality_reports_project_id'), ['project_id'], unique=False)

    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extra_annotations', sa.Integer(), server_default='0', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_column('extra_annotations')

    with op.batch_alter_table('quality_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quality_reports_project_id'))

    op.drop_table('quality_reports')
    with op.batch_alter_table('label_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_label_reviews_project_id'))
        batch_op.drop_index('ix_label_reviews_item_label')

    op.drop_table('label_reviews')
    with op.batch_alter_table('item_quality', schema=None) as batch_op:
        batch_op.drop_index('ix_item_quality_model_version_score')
        batch_op.drop_index('ix_item_quality_model_version_holdout_influence')
        batch_op.drop_index('ix_item_quality_item_id')

    op.drop_table('item_quality')
