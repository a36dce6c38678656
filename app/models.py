"""Imports every model so the metadata (and Alembic autogenerate) sees the whole schema."""
from app.auth.models import ApiToken, LoginAttempt  # noqa: F401
from app.care.models import CareTeamMember, Organisation, Patient, Professional, Site  # noqa: F401
from app.core.audit import AuditEvent  # noqa: F401
from app.pathways.models import (  # noqa: F401
    Drug, Enrolment, EnrolmentEvent, Prescription, PrescriptionEvent,
)
from app.pathways.checkins.models import Answer, CheckIn, QuestionnaireItem  # noqa: F401
from app.triage.models import Alert, AlertAction, NurseTask  # noqa: F401
from app.notifications.models import Message, OutboxEntry  # noqa: F401
from app.jobs.models import JobRun, SchedulerLease  # noqa: F401
from app.triage.grading import GradingRule  # noqa: F401
from app.triage.oncall import EscalationPolicy, EscalationStep, OnCallShift  # noqa: F401
from app.triage.paging import AlertPage  # noqa: F401
from app.monitoring.models import PlatformFault  # noqa: F401
from app.adherence.models import AdherenceReport, AdherenceSnapshot, Dispensing  # noqa: F401
from app.community.models import MedicationReconciliation, PharmacistInterview, Visit  # noqa: F401
from app.reports.models import LedgerEntry, Tariff  # noqa: F401
