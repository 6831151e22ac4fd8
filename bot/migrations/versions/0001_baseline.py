"""Baseline: the gateway schema as it was when migrations were introduced (2026-12-05).

Frozen: later changes are new revisions, never edits here. A database made before this (tables
without ``alembic_version``) is adopted by ``bot.schema.upgrade`` and stamped at this revision.

Revision ID: 0001
Revises:
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counsellor_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("counsellor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_key", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("risk_level", sa.String(length=8), nullable=False),
        sa.Column("risk_category", sa.String(length=32), nullable=False),
        sa.Column("triggers", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("counsellor", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("claimed_at", sa.Float(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.Column("notified_at", sa.Float(), nullable=True),
        sa.Column("timeout_notice_at", sa.Float(), nullable=True),
        sa.Column("rasa_paused", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_escalations_status"), "escalations", ["status"], unique=False)
    op.create_index(op.f("ix_escalations_user_key"), "escalations", ["user_key"], unique=False)
    op.create_table(
        "profiles",
        sa.Column("user_key", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("language_pinned", sa.Boolean(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("user_key"),
    )
    op.create_table(
        "sms_inbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_id", sa.String(length=128), nullable=False),
        sa.Column("user_key", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("processed_at", sa.Float(), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "provider_id", name="uq_sms_inbox_provider_id"),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_sms_inbox_processed_at"), "sms_inbox", ["processed_at"], unique=False)
    op.create_index(op.f("ix_sms_inbox_user_key"), "sms_inbox", ["user_key"], unique=False)
    op.create_table(
        "sms_subscribers",
        sa.Column("user_key", sa.String(length=64), nullable=False),
        sa.Column("opted_out_at", sa.Float(), nullable=True),
        sa.Column("menu", sa.Text(), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("user_key"),
    )
    op.create_table(
        "stats_claim_waits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_stats_claim_waits_day"), "stats_claim_waits", ["day"], unique=False)
    op.create_table(
        "stats_daily",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("topic", sa.String(length=24), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "channel", "language", "topic"),
    )
    op.create_table(
        "telegram_group_members",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", "user_id"),
    )
    op.create_table(
        "telegram_group_messages_v2",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("is_card", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", "message_id"),
    )
    op.create_index(
        op.f("ix_telegram_group_messages_v2_escalation_id"), "telegram_group_messages_v2", ["escalation_id"], unique=False
    )
    op.create_table(
        "telegram_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_key", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_telegram_messages_user_key"), "telegram_messages", ["user_key"], unique=False)
    op.create_table(
        "telegram_relay_progress",
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("last_line_id", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("escalation_id"),
    )
    op.create_table(
        "escalation_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("sender", sa.String(length=16), nullable=False),
        sa.Column("counsellor", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_escalation_messages_escalation_id"), "escalation_messages", ["escalation_id"], unique=False)
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=True),
        sa.Column("user_key", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_outbox_channel"), "outbox", ["channel"], unique=False)
    op.create_index(op.f("ix_outbox_escalation_id"), "outbox", ["escalation_id"], unique=False)
    op.create_index(op.f("ix_outbox_user_key"), "outbox", ["user_key"], unique=False)
    # ### end Alembic commands ###


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_user_key"), table_name="outbox")
    op.drop_index(op.f("ix_outbox_escalation_id"), table_name="outbox")
    op.drop_index(op.f("ix_outbox_channel"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_index(op.f("ix_escalation_messages_escalation_id"), table_name="escalation_messages")
    op.drop_table("escalation_messages")
    op.drop_table("telegram_relay_progress")
    op.drop_index(op.f("ix_telegram_messages_user_key"), table_name="telegram_messages")
    op.drop_table("telegram_messages")
    op.drop_index(op.f("ix_telegram_group_messages_v2_escalation_id"), table_name="telegram_group_messages_v2")
    op.drop_table("telegram_group_messages_v2")
    op.drop_table("telegram_group_members")
    op.drop_table("stats_daily")
    op.drop_index(op.f("ix_stats_claim_waits_day"), table_name="stats_claim_waits")
    op.drop_table("stats_claim_waits")
    op.drop_table("sms_subscribers")
    op.drop_index(op.f("ix_sms_inbox_user_key"), table_name="sms_inbox")
    op.drop_index(op.f("ix_sms_inbox_processed_at"), table_name="sms_inbox")
    op.drop_table("sms_inbox")
    op.drop_table("profiles")
    op.drop_index(op.f("ix_escalations_user_key"), table_name="escalations")
    op.drop_index(op.f("ix_escalations_status"), table_name="escalations")
    op.drop_table("escalations")
    op.drop_table("counsellor_audit")
    # ### end Alembic commands ###
