"""Outbox: which process claimed a row (a scheduler's lease holder id, or a CLI run's own id),
so that a scheduler taking the lease over recovers the rows of the holder it replaced at once.

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_entry") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(255), nullable=True))


def downgrade():
    # SQLite >= 3.35 drops a column in place: recreating the table would trip over the
    # foreign keys of the messages that point at its rows.
    with op.batch_alter_table("outbox_entry", recreate="never") as batch:
        batch.drop_column("claimed_by")
