"""The outbox keeps a message's buttons (sealed, like its text): a Telegram answer recorded in the
outbox before it is sent (so that a replayed update is not answered twice) keeps her yes/no and
country buttons when the outbox, not the handler, delivers it. Owned by bot/handoff.py.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a database adopted from before the migrations had its baseline tables made from today's
    # models (bot/schema.py): its outbox may have the column already
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("outbox")}
    if "buttons" in present:
        return
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("buttons", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("buttons")
