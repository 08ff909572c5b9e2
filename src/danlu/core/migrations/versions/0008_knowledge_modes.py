"""knowledge: chunking modes, parent paragraphs, QA answers, document metadata and source

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("knowledge_bases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("chunk_mode", sa.String(length=16), nullable=False, server_default="general")
        )
        batch_op.add_column(
            sa.Column("parent_size", sa.Integer(), nullable=False, server_default="1500")
        )
        batch_op.add_column(sa.Column("separators", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("qa_model", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))

    with op.batch_alter_table("kb_documents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=1024), nullable=False, server_default="upload")
        )
        batch_op.add_column(sa.Column("meta", sa.JSON(), nullable=False, server_default="{}"))

    op.create_table(
        "kb_parents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kb_id", sa.String(length=32), nullable=False),
        sa.Column("document_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["kb_documents.id"],
            name=op.f("fk_kb_parents_document_id_kb_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["kb_id"],
            ["knowledge_bases.id"],
            name=op.f("fk_kb_parents_kb_id_knowledge_bases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_parents")),
    )
    with op.batch_alter_table("kb_parents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_parents_kb_id"), ["kb_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_kb_parents_document_id"), ["document_id"], unique=False
        )

    with op.batch_alter_table("kb_chunks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("answer", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_kb_chunks_parent_id_kb_parents"),
            "kb_parents",
            ["parent_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("kb_chunks", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_kb_chunks_parent_id_kb_parents"), type_="foreignkey"
        )
        batch_op.drop_column("answer")
        batch_op.drop_column("parent_id")
    op.drop_table("kb_parents")
    with op.batch_alter_table("kb_documents", schema=None) as batch_op:
        batch_op.drop_column("meta")
        batch_op.drop_column("source")
    with op.batch_alter_table("knowledge_bases", schema=None) as batch_op:
        batch_op.drop_column("revision")
        batch_op.drop_column("qa_model")
        batch_op.drop_column("separators")
        batch_op.drop_column("parent_size")
        batch_op.drop_column("chunk_mode")
