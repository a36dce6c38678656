"""Adherence: dispensings, professionals' adherence reports, daily adherence snapshots.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "dispensing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("prescription_id", sa.Integer(), nullable=True),
        sa.Column("drug_id", sa.Integer(), nullable=False),
        sa.Column("strength", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("days_supply", sa.Integer(), nullable=False),
        sa.Column("dispensed_on", sa.Date(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_duplicate", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_dispensing_quantity")),
        sa.CheckConstraint("days_supply BETWEEN 1 AND 366", name=op.f("ck_dispensing_days_supply")),
        sa.ForeignKeyConstraint(["drug_id"], ["drug.id"], name=op.f("fk_dispensing_drug_id_drug")),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"],
                                name=op.f("fk_dispensing_organisation_id_organisation")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_dispensing_patient_id_patient")),
        sa.ForeignKeyConstraint(["prescription_id"], ["prescription.id"],
                                name=op.f("fk_dispensing_prescription_id_prescription")),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["professional.id"],
                                name=op.f("fk_dispensing_recorded_by_id_professional")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispensing")),
    )
    with op.batch_alter_table("dispensing") as batch_op:
        batch_op.create_index("ix_dispensing_patient_drug_date", ["patient_id", "drug_id", "dispensed_on"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_dispensing_prescription_id"), ["prescription_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dispensing_organisation_id"), ["organisation_id"], unique=False)
        # The same dispensing recorded twice (not confirmed as such) cannot exist, whoever races.
        batch_op.create_index(
            "uq_dispensing_once", ["patient_id", "organisation_id", "drug_id", "dispensed_on", "quantity"],
            unique=True, sqlite_where=sa.text("NOT confirmed_duplicate"),
            postgresql_where=sa.text("NOT confirmed_duplicate"))

    op.create_table(
        "adherence_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("professional_id", sa.Integer(), nullable=False),
        sa.Column("reported_on", sa.Date(), nullable=False),
        sa.Column("assessment", sa.String(length=10), nullable=False),
        sa.Column("doses_missed_estimate", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("assessment IN ('good', 'doubtful', 'poor')", name=op.f("ck_adherence_report_assessment")),
        sa.CheckConstraint("doses_missed_estimate IS NULL OR doses_missed_estimate >= 0",
                           name=op.f("ck_adherence_report_estimate")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_adherence_report_patient_id_patient")),
        sa.ForeignKeyConstraint(["professional_id"], ["professional.id"],
                                name=op.f("fk_adherence_report_professional_id_professional")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adherence_report")),
    )
    with op.batch_alter_table("adherence_report") as batch_op:
        batch_op.create_index("ix_adherence_report_patient_date", ["patient_id", "reported_on"], unique=False)

    op.create_table(
        "adherence_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("computed_on", sa.Date(), nullable=False),
        sa.Column("window", sa.String(length=5), nullable=False),
        sa.Column("pdc", sa.Float(), nullable=True),
        sa.Column("needed_days", sa.Integer(), nullable=False),
        sa.Column("covered_days", sa.Integer(), nullable=False),
        sa.Column("self_report", sa.Float(), nullable=True),
        sa.Column("professional_assessment", sa.String(length=10), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("\"window\" IN ('30', '90', 'start')", name=op.f("ck_adherence_snapshot_window")),
        sa.CheckConstraint("pdc IS NULL OR (pdc >= 0 AND pdc <= 1)", name=op.f("ck_adherence_snapshot_pdc")),
        sa.CheckConstraint("self_report IS NULL OR (self_report >= 0 AND self_report <= 1)",
                           name=op.f("ck_adherence_snapshot_self_report")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"],
                                name=op.f("fk_adherence_snapshot_patient_id_patient")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adherence_snapshot")),
        sa.UniqueConstraint("patient_id", "window", "computed_on", name="uq_adherence_snapshot_day"),
    )


def downgrade():
    op.drop_table("adherence_snapshot")
    with op.batch_alter_table("adherence_report") as batch_op:
        batch_op.drop_index("ix_adherence_report_patient_date")
    op.drop_table("adherence_report")
    with op.batch_alter_table("dispensing") as batch_op:
        batch_op.drop_index("uq_dispensing_once")
        batch_op.drop_index(batch_op.f("ix_dispensing_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_dispensing_prescription_id"))
        batch_op.drop_index("ix_dispensing_patient_drug_date")
    op.drop_table("dispensing")
