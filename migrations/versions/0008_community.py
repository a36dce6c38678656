"""Community portal: pharmaceutical interviews, medication reconciliations, community visits.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "pharmacist_interview",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("pharmacist_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("next_due_kind", sa.String(length=30), nullable=False),
        sa.Column("next_due_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('initial', 'daily_life_side_effects', 'adherence')",
                           name=op.f("ck_pharmacist_interview_kind")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_pharmacist_interview_patient_id_patient")),
        sa.ForeignKeyConstraint(["pharmacist_id"], ["professional.id"],
                                name=op.f("fk_pharmacist_interview_pharmacist_id_professional")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pharmacist_interview")),
    )
    with op.batch_alter_table("pharmacist_interview") as batch_op:
        batch_op.create_index("ix_pharmacist_interview_patient_held", ["patient_id", "held_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_pharmacist_interview_pharmacist_id"), ["pharmacist_id"], unique=False)

    op.create_table(
        "medication_reconciliation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("submitted_by_id", sa.Integer(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('submitted', 'reviewed')", name=op.f("ck_medication_reconciliation_status")),
        sa.CheckConstraint("status <> 'reviewed' OR (reviewed_by_id IS NOT NULL AND review_note IS NOT NULL)",
                           name=op.f("ck_medication_reconciliation_reviewed")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"],
                                name=op.f("fk_medication_reconciliation_patient_id_patient")),
        sa.ForeignKeyConstraint(["reviewed_by_id"], ["professional.id"],
                                name=op.f("fk_medication_reconciliation_reviewed_by_id_professional")),
        sa.ForeignKeyConstraint(["submitted_by_id"], ["professional.id"],
                                name=op.f("fk_medication_reconciliation_submitted_by_id_professional")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_medication_reconciliation")),
    )
    with op.batch_alter_table("medication_reconciliation") as batch_op:
        batch_op.create_index("ix_medication_reconciliation_patient_status", ["patient_id", "status"], unique=False)

    op.create_table(
        "community_visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("professional_id", sa.Integer(), nullable=False),
        sa.Column("visit_on", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("systolic", sa.Integer(), nullable=True),
        sa.Column("diastolic", sa.Integer(), nullable=True),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("weight_kg", sa.Float(), nullable=True),
        sa.Column("side_effects", sa.JSON(), nullable=False),
        sa.Column("actions_taken", sa.Text(), nullable=True),
        sa.Column("concern", sa.Boolean(), nullable=False),
        sa.Column("concern_urgent", sa.Boolean(), nullable=False),
        sa.Column("concern_text", sa.Text(), nullable=True),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('home', 'office', 'phone')", name=op.f("ck_community_visit_kind")),
        sa.CheckConstraint("temperature IS NULL OR temperature BETWEEN 34 AND 43",
                           name=op.f("ck_community_visit_temperature")),
        sa.CheckConstraint("weight_kg IS NULL OR weight_kg BETWEEN 20 AND 300", name=op.f("ck_community_visit_weight")),
        sa.ForeignKeyConstraint(["alert_id"], ["alert.id"], name=op.f("fk_community_visit_alert_id_alert")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_community_visit_patient_id_patient")),
        sa.ForeignKeyConstraint(["professional_id"], ["professional.id"],
                                name=op.f("fk_community_visit_professional_id_professional")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_visit")),
        sa.UniqueConstraint("patient_id", "professional_id", "visit_on", "kind", name="uq_community_visit_once"),
    )
    with op.batch_alter_table("community_visit") as batch_op:
        batch_op.create_index(batch_op.f("ix_community_visit_professional_id"), ["professional_id"], unique=False)


def downgrade():
    with op.batch_alter_table("community_visit") as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_visit_professional_id"))
    op.drop_table("community_visit")
    with op.batch_alter_table("medication_reconciliation") as batch_op:
        batch_op.drop_index("ix_medication_reconciliation_patient_status")
    op.drop_table("medication_reconciliation")
    with op.batch_alter_table("pharmacist_interview") as batch_op:
        batch_op.drop_index(batch_op.f("ix_pharmacist_interview_pharmacist_id"))
        batch_op.drop_index("ix_pharmacist_interview_patient_held")
    op.drop_table("pharmacist_interview")
