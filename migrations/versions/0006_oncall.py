"""On-call rota, escalation policy and chain, pages of red alerts.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "oncall_shift",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("professional_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_oncall_shift_order")),
        sa.ForeignKeyConstraint(["professional_id"], ["professional.id"],
                                name=op.f("fk_oncall_shift_professional_id_professional")),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_oncall_shift_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_shift")),
    )
    with op.batch_alter_table("oncall_shift") as batch_op:
        batch_op.create_index("ix_oncall_shift_site_ends", ["site_id", "ends_at"], unique=False)
        batch_op.create_index("ix_oncall_shift_professional_ends", ["professional_id", "ends_at"], unique=False)

    op.create_table(
        "escalation_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("ack_minutes", sa.Integer(), nullable=False),
        sa.Column("fallback_phone", sa.String(length=20), nullable=False),
        sa.Column("fallback_label", sa.String(length=80), nullable=False),
        sa.Column("orange_working_hours", sa.Integer(), server_default="8", nullable=False),
        sa.Column("yellow_days", sa.Integer(), server_default="7", nullable=False),
        sa.Column("workday_start", sa.Integer(), server_default="8", nullable=False),
        sa.Column("workday_end", sa.Integer(), server_default="18", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ack_minutes BETWEEN 5 AND 240", name=op.f("ck_escalation_policy_ack_minutes")),
        sa.CheckConstraint("workday_start < workday_end", name=op.f("ck_escalation_policy_workday")),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_escalation_policy_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_policy")),
        sa.UniqueConstraint("site_id", name=op.f("uq_escalation_policy_site_id")),
    )

    op.create_table(
        "escalation_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=15), nullable=False),
        sa.Column("professional_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(kind = 'on_call' AND professional_id IS NULL) OR "
            "(kind = 'professional' AND professional_id IS NOT NULL)", name=op.f("ck_escalation_step_kind")),
        sa.ForeignKeyConstraint(["professional_id"], ["professional.id"],
                                name=op.f("fk_escalation_step_professional_id_professional")),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_escalation_step_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_step")),
        sa.UniqueConstraint("site_id", "position", name="uq_escalation_step_site_position"),
    )

    op.create_table(
        "alert_page",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=15), nullable=False),
        sa.Column("professional_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_via", sa.String(length=4), nullable=True),
        sa.CheckConstraint("target IN ('on_call', 'professional', 'fallback')", name=op.f("ck_alert_page_target")),
        sa.CheckConstraint("acknowledged_via IS NULL OR acknowledged_via IN ('sms', 'link')",
                           name=op.f("ck_alert_page_via")),
        sa.ForeignKeyConstraint(["alert_id"], ["alert.id"], name=op.f("fk_alert_page_alert_id_alert")),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox_entry.id"], name=op.f("fk_alert_page_outbox_id_outbox_entry")),
        sa.ForeignKeyConstraint(["professional_id"], ["professional.id"],
                                name=op.f("fk_alert_page_professional_id_professional")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_page")),
        sa.UniqueConstraint("alert_id", "level", name="uq_alert_page_alert_level"),
        sa.UniqueConstraint("token_digest", name=op.f("uq_alert_page_token_digest")),
    )
    with op.batch_alter_table("alert_page") as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_page_professional_id"), ["professional_id"], unique=False)


def downgrade():
    op.drop_table("alert_page")
    op.drop_table("escalation_step")
    op.drop_table("escalation_policy")
    op.drop_table("oncall_shift")
