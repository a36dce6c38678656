"""Organisations, sites, professionals, patients and their care teams."""
from __future__ import annotations

from enum import StrEnum

from flask_babel import lazy_gettext as _l
from flask_login import UserMixin

from app.core.db import TimestampMixin, UTCDateTime
from app.core.time import utcnow
from app.core.roles import COMMUNITY_ROLES, HOSPITAL_ROLES, Role
from app.extensions import db


class OrganisationKind(StrEnum):
    HOSPITAL = "hospital"
    COMMUNITY_PHARMACY = "community_pharmacy"
    GP_PRACTICE = "gp_practice"
    NURSING_PRACTICE = "nursing_practice"


ORGANISATION_KIND_LABELS = {
    OrganisationKind.HOSPITAL: _l("Hospital"),
    OrganisationKind.COMMUNITY_PHARMACY: _l("Community pharmacy"),
    OrganisationKind.GP_PRACTICE: _l("GP practice"),
    OrganisationKind.NURSING_PRACTICE: _l("Nursing practice"),
}

# Which organisation kind each role belongs to.
ROLE_ORGANISATION_KIND = {
    Role.COORDINATING_NURSE: OrganisationKind.HOSPITAL,
    Role.ONCOLOGIST: OrganisationKind.HOSPITAL,
    Role.HOSPITAL_PHARMACIST: OrganisationKind.HOSPITAL,
    Role.COMMUNITY_PHARMACIST: OrganisationKind.COMMUNITY_PHARMACY,
    Role.GP: OrganisationKind.GP_PRACTICE,
    Role.COMMUNITY_NURSE: OrganisationKind.NURSING_PRACTICE,
}


class PatientStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    HOSPITALISED = "hospitalised"
    ENDED = "ended"


PATIENT_STATUS_LABELS = {
    PatientStatus.ACTIVE: _l("Active"),
    PatientStatus.PAUSED: _l("Paused"),
    PatientStatus.HOSPITALISED: _l("Hospitalised"),
    PatientStatus.ENDED: _l("Ended"),
}


class Channel(StrEnum):
    SMS = "sms"
    VOICE = "voice"


class Organisation(TimestampMixin, db.Model):
    __tablename__ = "organisation"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(200), nullable=False)
    kind = db.Column(db.String(30), nullable=False)
    finess = db.Column(db.String(9), unique=True)
    city = db.Column(db.String(120))
    phone = db.Column(db.String(20))
    active = db.Column(db.Boolean, nullable=False, default=True)

    sites = db.relationship("Site", back_populates="organisation", order_by="Site.name")

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.kind} {self.name!r}>"


class Site(TimestampMixin, db.Model):
    """A hospital site: the unit that owns patients, rota and settings."""

    __tablename__ = "site"

    id = db.Column(db.Integer, primary_key=True)
    organisation_id = db.Column(db.Integer, db.ForeignKey("organisation.id"), nullable=False, index=True)
    code = db.Column(db.String(20), nullable=False, unique=True)
    name = db.Column(db.String(200), nullable=False)
    timezone = db.Column(db.String(64), nullable=False, default="Europe/Paris")
    hospital_phone = db.Column(db.String(20), nullable=False)
    s3_followup_weeks = db.Column(db.Integer, nullable=False, default=2)
    active = db.Column(db.Boolean, nullable=False, default=True)

    organisation = db.relationship("Organisation", back_populates="sites")

    __table_args__ = (
        db.CheckConstraint("s3_followup_weeks IN (2, 4)", name="s3_weeks"),
    )

    def __repr__(self) -> str:
        return f"<Site {self.code}>"


class Professional(UserMixin, TimestampMixin, db.Model):
    """A person of the care circuit; also the login account."""

    __tablename__ = "professional"

    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(254), nullable=False, unique=True)
    password_hash = db.Column(db.String(255), nullable=False)
    first_name = db.Column(db.String(100), nullable=False)
    last_name = db.Column(db.String(100), nullable=False)
    role = db.Column(db.String(30), nullable=False, index=True)
    organisation_id = db.Column(db.Integer, db.ForeignKey("organisation.id"), index=True)
    site_id = db.Column(db.Integer, db.ForeignKey("site.id"), index=True)
    phone = db.Column(db.String(20))
    rpps = db.Column(db.String(11))
    language = db.Column(db.String(2), nullable=False, default="fr")
    active = db.Column(db.Boolean, nullable=False, default=True)
    # Bumped on password change or deactivation: every open session ends.
    session_version = db.Column(db.Integer, nullable=False, default=1)
    last_login_at = db.Column(UTCDateTime())

    organisation = db.relationship("Organisation")
    site = db.relationship("Site")

    def __repr__(self) -> str:
        return f"<Professional {self.id} {self.role}>"

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive accounts
        return bool(self.active)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def is_hospital(self) -> bool:
        return self.role in HOSPITAL_ROLES

    @property
    def is_community(self) -> bool:
        return self.role in COMMUNITY_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class Patient(TimestampMixin, db.Model):
    __tablename__ = "patient"

    id = db.Column(db.Integer, primary_key=True)
    site_id = db.Column(db.Integer, db.ForeignKey("site.id"), nullable=False)
    mrn = db.Column(db.String(40), nullable=False)
    ins = db.Column(db.String(22), unique=True)
    first_name = db.Column(db.String(100), nullable=False)
    last_name = db.Column(db.String(100), nullable=False)
    birth_date = db.Column(db.Date, nullable=False)
    phone = db.Column(db.String(20), nullable=False, index=True)
    language = db.Column(db.String(2), nullable=False, default="fr")
    channel = db.Column(db.String(10), nullable=False, default=Channel.SMS)
    checkin_weekday = db.Column(db.Integer, nullable=False, default=0)
    checkin_hour = db.Column(db.Integer, nullable=False, default=10)
    timezone = db.Column(db.String(64), nullable=False, default="Europe/Paris")
    consent_given = db.Column(db.Boolean, nullable=False, default=False)
    consent_date = db.Column(db.Date)
    consent_recorded_by_id = db.Column(db.Integer, db.ForeignKey("professional.id"))
    status = db.Column(db.String(20), nullable=False, default=PatientStatus.ACTIVE, index=True)
    opted_out_at = db.Column(UTCDateTime())

    site = db.relationship("Site")
    consent_recorded_by = db.relationship("Professional")
    care_team = db.relationship(
        "CareTeamMember", back_populates="patient", order_by="CareTeamMember.start_date"
    )

    __table_args__ = (
        db.UniqueConstraint("site_id", "mrn", name="uq_patient_site_mrn"),
        db.Index("ix_patient_site_name", "site_id", "last_name", "first_name"),
        db.CheckConstraint("checkin_weekday BETWEEN 0 AND 6", name="weekday"),
        db.CheckConstraint("checkin_hour BETWEEN 0 AND 23", name="hour"),
        db.CheckConstraint("language IN ('fr', 'en')", name="language"),
        db.CheckConstraint("channel IN ('sms', 'voice')", name="channel"),
    )

    def __repr__(self) -> str:
        return f"<Patient {self.id}>"  # no name: reprs end up in logs

    @property
    def display_name(self) -> str:
        return f"{self.last_name.upper()} {self.first_name}"


class CareTeamMember(db.Model):
    __tablename__ = "care_team_member"

    id = db.Column(db.Integer, primary_key=True)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), nullable=False, index=True)
    professional_id = db.Column(db.Integer, db.ForeignKey("professional.id"), nullable=False, index=True)
    role = db.Column(db.String(30), nullable=False)
    is_lead = db.Column(db.Boolean, nullable=False, default=False)
    start_date = db.Column(db.Date, nullable=False)
    end_date = db.Column(db.Date)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    patient = db.relationship("Patient", back_populates="care_team")
    professional = db.relationship("Professional")

    __table_args__ = (
        db.CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates"),
        db.Index("ix_care_team_member_prof_patient", "professional_id", "patient_id"),
    )

    def __repr__(self) -> str:
        return f"<CareTeamMember {self.id} {self.role}>"
