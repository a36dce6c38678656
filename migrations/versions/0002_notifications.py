"""notifications: outbox entries and messages

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "outbox_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("to_number", sa.String(length=20), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("twiml_path", sa.String(length=300), nullable=True),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("ref", sa.String(length=120), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("provider_sid", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("channel IN ('sms', 'voice')", name=op.f("ck_outbox_entry_channel")),
        sa.CheckConstraint(
            "state IN ('pending', 'sending', 'sent', 'failed', 'dead')", name=op.f("ck_outbox_entry_state")
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_outbox_entry_patient_id_patient")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_entry")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_entry_idempotency_key")),
        sa.UniqueConstraint("provider_sid", name=op.f("uq_outbox_entry_provider_sid")),
    )
    with op.batch_alter_table("outbox_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_entry_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_entry_ref"), ["ref"], unique=False)
        batch_op.create_index("ix_outbox_entry_state_next_attempt_at", ["state", "next_attempt_at"], unique=False)

    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("provider_sid", sa.String(length=64), nullable=True),
        sa.Column("from_number", sa.String(length=40), nullable=True),
        sa.Column("to_number", sa.String(length=40), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("ref", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("channel IN ('sms', 'voice')", name=op.f("ck_message_channel")),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_message_direction")),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox_entry.id"], name=op.f("fk_message_outbox_id_outbox_entry")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_message_patient_id_patient")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
        sa.UniqueConstraint("provider_sid", name=op.f("uq_message_provider_sid")),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_outbox_id"), ["outbox_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_message_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_message_ref"), ["ref"], unique=False)


def downgrade():
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_ref"))
        batch_op.drop_index(batch_op.f("ix_message_patient_id"))
        batch_op.drop_index(batch_op.f("ix_message_outbox_id"))
    op.drop_table("message")
    with op.batch_alter_table("outbox_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_entry_state_next_attempt_at")
        batch_op.drop_index(batch_op.f("ix_outbox_entry_ref"))
        batch_op.drop_index(batch_op.f("ix_outbox_entry_patient_id"))
    op.drop_table("outbox_entry")
