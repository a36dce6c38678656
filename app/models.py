"""Imports every model so the metadata (and Alembic autogenerate) sees the whole schema."""
from app.auth.models import ApiToken, LoginAttempt  # noqa: F401
from app.care.models import CareTeamMember, Organisation, Patient, Professional, Site  # noqa: F401
from app.core.audit import AuditEvent  # noqa: F401
from app.pathways.models import (  # noqa: F401
    Drug, Enrolment, EnrolmentEvent, Prescription, PrescriptionEvent,
)
from app.triage.models import Alert, AlertAction, NurseTask  # noqa: F401
