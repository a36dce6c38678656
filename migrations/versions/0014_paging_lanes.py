"""Pages that arrive: outbox priority lanes, page channels (SMS, call, both), failed pages,
out-of-hours and holiday settings, technical contact, platform faults.

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_TO_SEND = "state IN ('pending', 'sending')"
_GIVEN_UP = "state IN ('failed', 'dead')"
_TRIED = "first_attempt_at IS NOT NULL"
_UNDELIVERED = "status IN ('failed', 'undelivered', 'busy', 'no-answer', 'canceled')"


def upgrade():
    # A plain ADD COLUMN (no table rebuild on SQLite: messages and pages reference this table).
    op.add_column("outbox_entry", sa.Column("priority", sa.Integer(), server_default="1", nullable=False))
    op.create_index("ix_outbox_entry_claim", "outbox_entry", ["priority", "next_attempt_at", "id"],
                    postgresql_where=sa.text(_TO_SEND), sqlite_where=sa.text(_TO_SEND))
    # The claim index replaces (state, next_attempt_at), which SQLite would prefer for the claim.
    op.drop_index("ix_outbox_entry_state_next_attempt_at", table_name="outbox_entry")
    op.create_index("ix_outbox_entry_given_up", "outbox_entry", ["created_at"],
                    postgresql_where=sa.text(_GIVEN_UP), sqlite_where=sa.text(_GIVEN_UP))
    op.create_index("ix_outbox_entry_first_attempt", "outbox_entry", ["first_attempt_at"],
                    postgresql_where=sa.text(_TRIED), sqlite_where=sa.text(_TRIED))
    op.create_index("ix_message_undelivered", "message", ["status_updated_at"],
                    postgresql_where=sa.text(_UNDELIVERED), sqlite_where=sa.text(_UNDELIVERED))

    with op.batch_alter_table("escalation_step") as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=5), server_default="sms", nullable=False))
        batch_op.create_check_constraint(op.f("ck_escalation_step_channel"), "channel IN ('sms', 'voice', 'both')")

    with op.batch_alter_table("escalation_policy") as batch_op:
        batch_op.add_column(sa.Column("fallback_channel", sa.String(length=5), server_default="auto", nullable=False))
        batch_op.add_column(sa.Column("out_of_hours_orange", sa.String(length=5), server_default="page",
                                      nullable=False))
        batch_op.add_column(sa.Column("holiday_country", sa.String(length=2), server_default="FR", nullable=False))
        batch_op.add_column(sa.Column("holiday_subdivision", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("tech_contact_phone", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("tech_contact_channel", sa.String(length=5), server_default="sms",
                                      nullable=False))
        batch_op.add_column(sa.Column("fault_delay_minutes", sa.Integer(), server_default="5", nullable=False))
        batch_op.create_check_constraint(op.f("ck_escalation_policy_fallback_channel"),
                                         "fallback_channel IN ('auto', 'sms', 'voice', 'both')")
        batch_op.create_check_constraint(op.f("ck_escalation_policy_out_of_hours_orange"),
                                         "out_of_hours_orange IN ('page', 'wait')")
        batch_op.create_check_constraint(op.f("ck_escalation_policy_tech_contact_channel"),
                                         "tech_contact_channel IN ('sms', 'voice', 'both')")
        batch_op.create_check_constraint(op.f("ck_escalation_policy_fault_delay_minutes"),
                                         "fault_delay_minutes BETWEEN 1 AND 240")

    with op.batch_alter_table("alert_page") as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=5), server_default="sms", nullable=False))
        batch_op.add_column(sa.Column("call_outbox_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column("acknowledged_via", existing_type=sa.String(length=4), type_=sa.String(length=5),
                              existing_nullable=True)
        batch_op.drop_constraint(op.f("ck_alert_page_via"), type_="check")
        batch_op.create_check_constraint(op.f("ck_alert_page_via"),
                                         "acknowledged_via IS NULL OR acknowledged_via IN ('sms', 'link', 'voice')")
        batch_op.create_check_constraint(op.f("ck_alert_page_channel"), "channel IN ('sms', 'voice', 'both')")
        batch_op.create_foreign_key(op.f("fk_alert_page_call_outbox_id_outbox_entry"), "outbox_entry",
                                    ["call_outbox_id"], ["id"])

    op.create_table(
        "platform_fault",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("check_name", sa.String(length=40), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_fault")),
    )
    op.create_index("uq_platform_fault_open", "platform_fault", ["check_name"], unique=True,
                    postgresql_where=sa.text("cleared_at IS NULL"), sqlite_where=sa.text("cleared_at IS NULL"))
    op.create_index("ix_platform_fault_started", "platform_fault", ["started_at"])


def downgrade():
    op.drop_index("ix_platform_fault_started", table_name="platform_fault")
    op.drop_index("uq_platform_fault_open", table_name="platform_fault")
    op.drop_table("platform_fault")

    # Voice acknowledgements become link ones for the older code (they were made by a person).
    op.execute("UPDATE alert_page SET acknowledged_via = 'link' WHERE acknowledged_via = 'voice'")
    with op.batch_alter_table("alert_page") as batch_op:
        batch_op.drop_constraint(op.f("fk_alert_page_call_outbox_id_outbox_entry"), type_="foreignkey")
        batch_op.drop_constraint(op.f("ck_alert_page_channel"), type_="check")
        batch_op.drop_constraint(op.f("ck_alert_page_via"), type_="check")
        batch_op.create_check_constraint(op.f("ck_alert_page_via"),
                                         "acknowledged_via IS NULL OR acknowledged_via IN ('sms', 'link')")
        batch_op.alter_column("acknowledged_via", existing_type=sa.String(length=5), type_=sa.String(length=4),
                              existing_nullable=True)
        batch_op.drop_column("failed_at")
        batch_op.drop_column("call_outbox_id")
        batch_op.drop_column("channel")

    with op.batch_alter_table("escalation_policy") as batch_op:
        for name in ("fault_delay_minutes", "tech_contact_channel", "out_of_hours_orange", "fallback_channel"):
            batch_op.drop_constraint(op.f(f"ck_escalation_policy_{name}"), type_="check")
        for name in ("fault_delay_minutes", "tech_contact_channel", "tech_contact_phone", "holiday_subdivision",
                     "holiday_country", "out_of_hours_orange", "fallback_channel"):
            batch_op.drop_column(name)

    with op.batch_alter_table("escalation_step") as batch_op:
        batch_op.drop_constraint(op.f("ck_escalation_step_channel"), type_="check")
        batch_op.drop_column("channel")

    op.drop_index("ix_message_undelivered", table_name="message")
    op.drop_index("ix_outbox_entry_first_attempt", table_name="outbox_entry")
    op.drop_index("ix_outbox_entry_given_up", table_name="outbox_entry")
    op.create_index("ix_outbox_entry_state_next_attempt_at", "outbox_entry", ["state", "next_attempt_at"])
    op.drop_index("ix_outbox_entry_claim", table_name="outbox_entry")
    # Native DROP COLUMN (SQLite 3.35+): rebuilding the table would break its references.
    op.execute("ALTER TABLE outbox_entry DROP COLUMN priority")
