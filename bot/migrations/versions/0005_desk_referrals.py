"""The web desk's referrals: one row per organisation a counsellor referred her to (and whether
the desk sent her its contact), instead of a JSON list on the case record, so that /erase and the
retention job remove them like the notes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desk_case_referrals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("organisation", sa.String(length=200), nullable=False),
        sa.Column("country", sa.String(length=8), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("referred_by", sa.String(length=64), nullable=True),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_desk_case_referrals_escalation_id"), "desk_case_referrals", ["escalation_id"], unique=False)
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT escalation_id, referrals, updated_at, updated_by FROM desk_case_records WHERE referrals IS NOT NULL")
    ).all()
    for row in rows:
        for name in json.loads(row.referrals or "[]"):
            conn.execute(
                sa.text(
                    "INSERT INTO desk_case_referrals (escalation_id, organisation, at, referred_by)"
                    " VALUES (:e, :o, :at, :by)"
                ),
                {"e": row.escalation_id, "o": str(name)[:200], "at": row.updated_at, "by": row.updated_by},
            )
    with op.batch_alter_table("desk_case_records") as batch:
        batch.drop_column("referrals")


def downgrade() -> None:
    with op.batch_alter_table("desk_case_records") as batch:
        batch.add_column(sa.Column("referrals", sa.Text(), nullable=True))
    conn = op.get_bind()
    chosen: dict[int, list[str]] = {}
    for row in conn.execute(sa.text("SELECT escalation_id, organisation FROM desk_case_referrals ORDER BY id")).all():
        chosen.setdefault(row.escalation_id, []).append(row.organisation)
    for escalation_id, names in chosen.items():
        conn.execute(
            sa.text("UPDATE desk_case_records SET referrals = :r WHERE escalation_id = :e"),
            {"r": json.dumps(names, ensure_ascii=False), "e": escalation_id},
        )
    op.drop_index(op.f("ix_desk_case_referrals_escalation_id"), table_name="desk_case_referrals")
    op.drop_table("desk_case_referrals")
