"""served models

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "served_models",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("repo_id", sa.String(length=32), nullable=False),
        sa.Column("commit_id", sa.String(length=40), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_served_models_repo_id_repos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_served_models")),
    )
    with op.batch_alter_table("served_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_served_models_repo_id"), ["repo_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("served_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_served_models_repo_id"))

    op.drop_table("served_models")
