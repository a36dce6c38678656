"""Check-ins: questionnaire items, check-ins (one per patient and period), answers.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "questionnaire_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text_fr", sa.String(length=400), nullable=False),
        sa.Column("text_en", sa.String(length=400), nullable=False),
        sa.Column("example_fr", sa.String(length=60), nullable=False),
        sa.Column("example_en", sa.String(length=60), nullable=False),
        sa.Column("answer_type", sa.String(length=20), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=True),
        sa.Column("drugs", sa.JSON(), nullable=True),
        sa.Column("symptom", sa.String(length=40), nullable=True),
        sa.Column("phase", sa.String(length=3), nullable=False),
        sa.Column("red_flag", sa.JSON(), nullable=True),
        sa.Column("finding", sa.JSON(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "answer_type IN ('yes_no', 'scale_0_3', 'count', 'temperature', 'blood_pressure', 'choice')",
            name=op.f("ck_questionnaire_item_answer_type"),
        ),
        sa.CheckConstraint("phase IN ('any', 'on', 'off')", name=op.f("ck_questionnaire_item_phase")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_questionnaire_item")),
        sa.UniqueConstraint("code", name=op.f("uq_questionnaire_item_code")),
    )
    op.create_table(
        "checkin",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("period_key", sa.String(length=20), nullable=False),
        sa.Column("sequence", sa.String(length=2), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("cancel_reason", sa.String(length=40), nullable=True),
        sa.Column("item_codes", sa.JSON(), nullable=True),
        sa.Column("phase", sa.String(length=3), nullable=True),
        sa.Column("current_index", sa.Integer(), nullable=False),
        sa.Column("reask_count", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminder_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("call_task_created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("no_response_alert_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("call_attempts", sa.Integer(), nullable=False),
        sa.Column("next_call_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("call_answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('scheduled', 'sent', 'in_progress', 'completed', 'partial', 'no_response', 'cancelled')",
            name=op.f("ck_checkin_status"),
        ),
        sa.CheckConstraint("channel IN ('sms', 'voice')", name=op.f("ck_checkin_channel")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_checkin_patient_id_patient")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin")),
        sa.UniqueConstraint("patient_id", "period_key", name="uq_checkin_patient_period"),
    )
    with op.batch_alter_table("checkin") as batch_op:
        batch_op.create_index("ix_checkin_status_scheduled_at", ["status", "scheduled_at"], unique=False)
        batch_op.create_index("ix_checkin_patient_scheduled_at", ["patient_id", "scheduled_at"], unique=False)
    op.create_table(
        "checkin_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("raw_text", sa.Text(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("parsed", sa.Boolean(), nullable=False),
        sa.Column("red_flag", sa.Boolean(), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.CheckConstraint("source IN ('sms', 'voice', 'nurse_call')", name=op.f("ck_checkin_answer_source")),
        sa.ForeignKeyConstraint(["checkin_id"], ["checkin.id"], name=op.f("fk_checkin_answer_checkin_id_checkin")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_answer")),
        sa.UniqueConstraint("checkin_id", "item_code", name="uq_checkin_answer_item"),
    )


def downgrade():
    op.drop_table("checkin_answer")
    op.drop_table("checkin")
    op.drop_table("questionnaire_item")
