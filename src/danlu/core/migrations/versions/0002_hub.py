"""hub: repos, commits, commit files, refs

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "repos",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=96), nullable=False),
        sa.Column("name_key", sa.String(length=96), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("pipeline_tag", sa.String(length=64), nullable=True),
        sa.Column("library_name", sa.String(length=64), nullable=True),
        sa.Column("license", sa.String(length=64), nullable=True),
        sa.Column("downloads", sa.BigInteger(), nullable=False),
        sa.Column("likes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_repos_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repos")),
        sa.UniqueConstraint("type", "workspace_id", "name_key", name=op.f("uq_repos_type")),
    )
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repos_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "commits",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("repo_id", sa.String(length=32), nullable=False),
        sa.Column("parent_id", sa.String(length=40), nullable=True),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repo_id"], ["repos.id"], name=op.f("fk_commits_repo_id_repos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commits")),
    )
    with op.batch_alter_table("commits", schema=None) as batch_op:
        batch_op.create_index("ix_commits_repo_created", ["repo_id", "created_at"], unique=False)

    op.create_table(
        "refs",
        sa.Column("repo_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("commit_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["repo_id"], ["repos.id"], name=op.f("fk_refs_repo_id_repos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("repo_id", "kind", "name", name=op.f("pk_refs")),
    )
    op.create_table(
        "commit_files",
        sa.Column("commit_id", sa.String(length=40), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("git_sha1", sa.String(length=40), nullable=False),
        sa.Column("lfs", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["commit_id"],
            ["commits.id"],
            name=op.f("fk_commit_files_commit_id_commits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("commit_id", "path", name=op.f("pk_commit_files")),
    )


def downgrade() -> None:

    op.drop_table("commit_files")
    op.drop_table("refs")
    with op.batch_alter_table("commits", schema=None) as batch_op:
        batch_op.drop_index("ix_commits_repo_created")

    op.drop_table("commits")
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repos_workspace_id"))

    op.drop_table("repos")
