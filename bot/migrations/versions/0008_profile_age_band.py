"""Profiles: an age band (``under_18``), not an age. Set when she says her age in a message, so that the offer
check can add child-specific advice and her country's child helpline later in the conversation (issue 16).
Erased with the profile (/erase, retention).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Adopting a pre-migration database creates a missing baseline table from today's models, which already have
    # this column (bot/schema.py): add it only where it is missing.
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("profiles")}
    if "under_18" in present:
        return
    with op.batch_alter_table("profiles") as batch:
        batch.add_column(sa.Column("under_18", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profiles") as batch:
        batch.drop_column("under_18")
