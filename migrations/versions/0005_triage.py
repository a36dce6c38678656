"""Triage: alerts, alert actions, nurse tasks.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "grading_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("drug_inn", sa.String(length=80), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("bands", sa.JSON(), nullable=False),
        sa.Column("worsening_severity", sa.String(length=10), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["professional.id"], name=op.f("fk_grading_rule_created_by_id_professional")),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_grading_rule_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grading_rule")),
        sa.UniqueConstraint("item_code", "drug_inn", "site_id", "version", name="uq_grading_rule_version"),
    )
    with op.batch_alter_table("grading_rule") as batch_op:
        batch_op.create_index("ix_grading_rule_item_current", ["item_code", "superseded_at"], unique=False)
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("reason_code", sa.String(length=60), nullable=False),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("checkin_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=15), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["rule_id"], ["grading_rule.id"], name=op.f("fk_alert_rule_id_grading_rule")),
        sa.CheckConstraint("severity IN ('red', 'orange', 'yellow', 'info')", name=op.f("ck_alert_severity")),
        sa.CheckConstraint("status IN ('open', 'acknowledged', 'resolved')", name=op.f("ck_alert_status")),
        sa.CheckConstraint("status <> 'resolved' OR resolution_note IS NOT NULL", name=op.f("ck_alert_resolved_note")),
        sa.ForeignKeyConstraint(["acknowledged_by_id"], ["professional.id"], name=op.f("fk_alert_acknowledged_by_id_professional")),
        sa.ForeignKeyConstraint(["owner_id"], ["professional.id"], name=op.f("fk_alert_owner_id_professional")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_alert_patient_id_patient")),
        sa.ForeignKeyConstraint(["resolved_by_id"], ["professional.id"], name=op.f("fk_alert_resolved_by_id_professional")),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_alert_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
    )
    with op.batch_alter_table("alert") as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_checkin_id"), ["checkin_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index("ix_alert_site_status_due", ["site_id", "status", "due_at"], unique=False)
    op.create_table(
        "alert_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["professional.id"], name=op.f("fk_alert_action_actor_id_professional")),
        sa.ForeignKeyConstraint(["alert_id"], ["alert.id"], name=op.f("fk_alert_action_alert_id_alert")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_action")),
    )
    with op.batch_alter_table("alert_action") as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_action_alert_id"), ["alert_id"], unique=False)
    op.create_table(
        "nurse_task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("reason_code", sa.String(length=60), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["done_by_id"], ["professional.id"], name=op.f("fk_nurse_task_done_by_id_professional")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_nurse_task_patient_id_patient")),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_nurse_task_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nurse_task")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_nurse_task_dedupe_key")),
    )
    with op.batch_alter_table("nurse_task") as batch_op:
        batch_op.create_index(batch_op.f("ix_nurse_task_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index("ix_nurse_task_site_status", ["site_id", "status"], unique=False)


def downgrade():
    op.drop_table("nurse_task")
    op.drop_table("alert_action")
    op.drop_table("alert")
    op.drop_table("grading_rule")
