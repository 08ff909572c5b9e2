"""community: discussions, likes of apps, follows, activity, notifications, webhooks, studio
profiles and links, download snapshots, the moderation audit log

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "community_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=True),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_community_audit_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_audit")),
    )
    with op.batch_alter_table("community_audit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_audit_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "community_follows",
        sa.Column("follower_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["follower_id"],
            ["users.id"],
            name=op.f("fk_community_follows_follower_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "follower_id", "kind", "target_id", name=op.f("pk_community_follows")
        ),
    )
    with op.batch_alter_table("community_follows", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_follows_target_id"), ["target_id"], unique=False
        )

    op.create_table(
        "community_webhook_deliveries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_community_webhook_deliveries_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_webhook_deliveries")),
    )
    with op.batch_alter_table("community_webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_community_webhook_deliveries_status_next",
            ["status", "next_attempt_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_community_webhook_deliveries_workspace_id"),
            ["workspace_id"],
            unique=False,
        )

    op.create_table(
        "community_webhooks",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_community_webhooks_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_community_webhooks")),
    )
    op.create_table(
        "community_activities",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("actor_id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=True),
        sa.Column("verb", sa.String(length=32), nullable=False),
        sa.Column("repo_id", sa.String(length=32), nullable=True),
        sa.Column("app_id", sa.String(length=32), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_community_activities_actor_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_community_activities_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_community_activities_repo_id_repos"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_community_activities_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_activities")),
    )
    with op.batch_alter_table("community_activities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_activities_actor_id"), ["actor_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_community_activities_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_community_activities_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "community_app_likes",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_community_app_likes_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_community_app_likes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "app_id", name=op.f("pk_community_app_likes")),
    )
    with op.batch_alter_table("community_app_likes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_community_app_likes_app_id"), ["app_id"], unique=False)

    op.create_table(
        "community_app_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("repo_id", sa.String(length=32), nullable=True),
        sa.Column("kb_id", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_community_app_links_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["kb_id"],
            ["knowledge_bases.id"],
            name=op.f("fk_community_app_links_kb_id_knowledge_bases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_community_app_links_repo_id_repos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_app_links")),
        sa.UniqueConstraint("app_id", "kind", "ref", name=op.f("uq_community_app_links_app_id")),
    )
    with op.batch_alter_table("community_app_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_community_app_links_kb_id"), ["kb_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_community_app_links_repo_id"), ["repo_id"], unique=False
        )

    op.create_table(
        "community_app_profiles",
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("cover_url", sa.String(length=1024), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("duplicated_from", sa.String(length=32), nullable=True),
        sa.Column("links_version", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_community_app_profiles_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["duplicated_from"],
            ["apps.id"],
            name=op.f("fk_community_app_profiles_duplicated_from_apps"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_community_app_profiles")),
    )
    with op.batch_alter_table("community_app_profiles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_app_profiles_duplicated_from"),
            ["duplicated_from"],
            unique=False,
        )

    op.create_table(
        "community_discussions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("repo_id", sa.String(length=32), nullable=True),
        sa.Column("app_id", sa.String(length=32), nullable=True),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("num", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("author_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_community_discussions_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_community_discussions_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_community_discussions_repo_id_repos"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_community_discussions_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_discussions")),
        sa.UniqueConstraint("app_id", "num", name=op.f("uq_community_discussions_app_id")),
        sa.UniqueConstraint("repo_id", "num", name=op.f("uq_community_discussions_repo_id")),
    )
    with op.batch_alter_table("community_discussions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_discussions_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "community_download_days",
        sa.Column("repo_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_community_download_days_repo_id_repos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repo_id", "day", name=op.f("pk_community_download_days")),
    )
    op.create_table(
        "community_notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("repo_id", sa.String(length=32), nullable=True),
        sa.Column("app_id", sa.String(length=32), nullable=True),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_community_notifications_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_community_notifications_repo_id_repos"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_community_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_notifications")),
    )
    with op.batch_alter_table("community_notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_community_notifications_user_id_id", ["user_id", "id"], unique=False
        )

    op.create_table(
        "community_events",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("discussion_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.String(length=32), nullable=True),
        sa.Column("parent_id", sa.String(length=24), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("edited", sa.Boolean(), nullable=False),
        sa.Column("edited_by", sa.String(length=64), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("hidden_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_community_events_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["discussion_id"],
            ["community_discussions.id"],
            name=op.f("fk_community_events_discussion_id_community_discussions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_events")),
    )
    with op.batch_alter_table("community_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_community_events_discussion_created", ["discussion_id", "created_at"], unique=False
        )

    op.create_table(
        "community_comment_revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=24), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["community_events.id"],
            name=op.f("fk_community_comment_revisions_event_id_community_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_comment_revisions")),
    )
    with op.batch_alter_table("community_comment_revisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_comment_revisions_event_id"), ["event_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("community_comment_revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_comment_revisions_event_id"))

    op.drop_table("community_comment_revisions")
    with op.batch_alter_table("community_events", schema=None) as batch_op:
        batch_op.drop_index("ix_community_events_discussion_created")

    op.drop_table("community_events")
    with op.batch_alter_table("community_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_community_notifications_user_id_id")

    op.drop_table("community_notifications")
    op.drop_table("community_download_days")
    with op.batch_alter_table("community_discussions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_discussions_workspace_id"))

    op.drop_table("community_discussions")
    with op.batch_alter_table("community_app_profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_app_profiles_duplicated_from"))

    op.drop_table("community_app_profiles")
    with op.batch_alter_table("community_app_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_app_links_repo_id"))
        batch_op.drop_index(batch_op.f("ix_community_app_links_kb_id"))

    op.drop_table("community_app_links")
    with op.batch_alter_table("community_app_likes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_app_likes_app_id"))

    op.drop_table("community_app_likes")
    with op.batch_alter_table("community_activities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_activities_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_community_activities_created_at"))
        batch_op.drop_index(batch_op.f("ix_community_activities_actor_id"))

    op.drop_table("community_activities")
    op.drop_table("community_webhooks")
    with op.batch_alter_table("community_webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_webhook_deliveries_workspace_id"))
        batch_op.drop_index("ix_community_webhook_deliveries_status_next")

    op.drop_table("community_webhook_deliveries")
    with op.batch_alter_table("community_follows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_follows_target_id"))

    op.drop_table("community_follows")
    with op.batch_alter_table("community_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_audit_workspace_id"))

    op.drop_table("community_audit")
