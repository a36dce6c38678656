"""Reports: tariffs (seeded with the amounts seen in the press, to review) and the payments ledger.

Revision ID: 0009
Revises: 0008
"""
from datetime import date, datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_REVIEW = "Default from the press, to review with the funder. "
# (code, recipient, amount_cents, from_month, note)
DEFAULT_TARIFFS = (
    ("gp_coordination_S1", "gp", 2500, 1, _REVIEW + "GP coordination, once per S1."),
    ("seq_S1_month", "site", 2500, 1, _REVIEW + "Per patient-month, months 1-6; recipient not stated: "
                                             "paid to the lead team's site."),
    ("seq_S1_month", "site", 5000, 7, _REVIEW + "Per patient-month from month 7; recipient not stated."),
    ("seq_S2_month", "site", 2500, 1, _REVIEW + "Per patient-month, months 1-6; recipient not stated: "
                                             "paid to the lead team's site."),
    ("seq_S2_month", "site", 5000, 7, _REVIEW + "Per patient-month from month 7; recipient not stated."),
    ("seq_S3_month", "site", 2500, 1, _REVIEW + "Per patient-month, months 1-6; recipient not stated: "
                                             "paid to the lead team's site."),
    ("seq_S3_month", "site", 5000, 7, _REVIEW + "Per patient-month from month 7; recipient not stated."),
    ("interview_year1", "community_pharmacist", 8000, 1,
     _REVIEW + "Year-1 interviews, other oral anticancer drugs (up to EUR 80); EUR 60 for long-term "
               "hormone drugs. Paid at the initial interview."),
    ("interview_later_year", "community_pharmacist", 2000, 1,
     _REVIEW + "Later years, long-term hormone drugs (EUR 20); amount for other drugs not stated. "
               "Paid at the first interview of each later year."),
)


def upgrade():
    tariff = op.create_table(
        "tariff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=30), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("from_month", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("amount_cents >= 0", name=op.f("ck_tariff_amount")),
        sa.CheckConstraint("from_month >= 1", name=op.f("ck_tariff_from_month")),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name=op.f("ck_tariff_dates")),
        sa.ForeignKeyConstraint(["created_by_id"], ["professional.id"],
                                name=op.f("fk_tariff_created_by_id_professional")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tariff")),
        sa.UniqueConstraint("code", "from_month", "valid_from", name="uq_tariff_version"),
    )
    op.create_table(
        "ledger_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("professional_id", sa.Integer(), nullable=True),
        sa.Column("activity", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("tariff_id", sa.Integer(), nullable=True),
        sa.Column("source_ref", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_cents >= 0", name=op.f("ck_ledger_entry_amount")),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"],
                                name=op.f("fk_ledger_entry_organisation_id_organisation")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_ledger_entry_patient_id_patient")),
        sa.ForeignKeyConstraint(["professional_id"], ["professional.id"],
                                name=op.f("fk_ledger_entry_professional_id_professional")),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_ledger_entry_site_id_site")),
        sa.ForeignKeyConstraint(["tariff_id"], ["tariff.id"], name=op.f("fk_ledger_entry_tariff_id_tariff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entry")),
        sa.UniqueConstraint("source_ref", name=op.f("uq_ledger_entry_source_ref")),
    )
    with op.batch_alter_table("ledger_entry") as batch_op:
        batch_op.create_index("ix_ledger_entry_period_site", ["period", "site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entry_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entry_professional_id"), ["professional_id"], unique=False)

    now = datetime.now(timezone.utc)
    op.bulk_insert(tariff, [
        {"code": code, "recipient": recipient, "amount_cents": cents, "from_month": from_month,
         "valid_from": date(2020, 1, 1), "valid_to": None, "is_default": True, "note": note, "created_at": now}
        for code, recipient, cents, from_month, note in DEFAULT_TARIFFS
    ])


def downgrade():
    op.drop_table("ledger_entry")
    op.drop_table("tariff")
