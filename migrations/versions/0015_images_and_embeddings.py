"""image projects and items' own embeddings: table item_images (an image project's pictures, stored
once per project under their SHA-256) and projects.embedding_dim (the length of the items' embeddings)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 16:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('projects', sa.Column('embedding_dim', sa.Integer(), nullable=True))
    op.create_table(
        'item_images',
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('media_type', sa.String(length=40), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_item_images_project_id_projects'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'digest', name=op.f('pk_item_images')),
    )


def downgrade() -> None:
    op.drop_table('item_images')
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('embedding_dim')
