"""repo likes

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "repo_likes",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("repo_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repo_id"], ["repos.id"], name=op.f("fk_repo_likes_repo_id_repos"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_repo_likes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "repo_id", name=op.f("pk_repo_likes")),
    )
    with op.batch_alter_table("repo_likes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repo_likes_repo_id"), ["repo_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("repo_likes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repo_likes_repo_id"))

    op.drop_table("repo_likes")
