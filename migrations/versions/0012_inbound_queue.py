"""Inbound SMS queue: the webhook stores, the process-inbound job reads (partial index).

Revision ID: 0012
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_message_inbound_queue", "message", ["id"],
                    postgresql_where=sa.text("status = 'queued'"), sqlite_where=sa.text("status = 'queued'"))


def downgrade():
    # Messages still queued were accepted but never read: mark them for the nurses rather
    # than leave them in a status the older code does not know.
    op.execute("UPDATE message SET status = 'handler_error' WHERE status = 'queued'")
    op.drop_index("ix_message_inbound_queue", table_name="message")
