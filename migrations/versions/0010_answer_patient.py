"""The patient of each check-in answer, copied from its check-in (the nightly adherence job
aggregates every patient's answers without joining the check-ins).

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("checkin_answer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_id", sa.Integer(), nullable=True))
    # One joined update (PostgreSQL, and SQLite from 3.33), not a subquery per answer.
    op.execute("UPDATE checkin_answer SET patient_id = checkin.patient_id FROM checkin "
               "WHERE checkin.id = checkin_answer.checkin_id")
    with op.batch_alter_table("checkin_answer", schema=None) as batch_op:
        batch_op.alter_column("patient_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(batch_op.f("fk_checkin_answer_patient_id_patient"), "patient",
                                    ["patient_id"], ["id"])
        batch_op.create_index(batch_op.f("ix_checkin_answer_patient_id"), ["patient_id"], unique=False)


def downgrade():
    with op.batch_alter_table("checkin_answer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkin_answer_patient_id"))
        batch_op.drop_constraint(batch_op.f("fk_checkin_answer_patient_id_patient"), type_="foreignkey")
        batch_op.drop_column("patient_id")
