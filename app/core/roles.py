"""Professional roles and the groups the access rules are written in."""
from __future__ import annotations

from enum import StrEnum

from flask_babel import lazy_gettext as _l


class Role(StrEnum):
    COORDINATING_NURSE = "coordinating_nurse"
    ONCOLOGIST = "oncologist"
    HOSPITAL_PHARMACIST = "hospital_pharmacist"
    COMMUNITY_PHARMACIST = "community_pharmacist"
    GP = "gp"
    COMMUNITY_NURSE = "community_nurse"
    ADMIN = "admin"


HOSPITAL_ROLES = frozenset({Role.COORDINATING_NURSE, Role.ONCOLOGIST, Role.HOSPITAL_PHARMACIST})
COMMUNITY_ROLES = frozenset({Role.COMMUNITY_PHARMACIST, Role.GP, Role.COMMUNITY_NURSE})
CLINICAL_ROLES = HOSPITAL_ROLES | COMMUNITY_ROLES
# Who may enrol patients, edit identity, change pathway or care team.
PATIENT_EDITORS = frozenset({Role.COORDINATING_NURSE, Role.ONCOLOGIST})
PRESCRIPTION_EDITORS = frozenset({Role.ONCOLOGIST, Role.COORDINATING_NURSE, Role.HOSPITAL_PHARMACIST})

ROLE_LABELS = {
    Role.COORDINATING_NURSE: _l("Coordinating nurse"),
    Role.ONCOLOGIST: _l("Oncologist"),
    Role.HOSPITAL_PHARMACIST: _l("Hospital pharmacist"),
    Role.COMMUNITY_PHARMACIST: _l("Community pharmacist"),
    Role.GP: _l("General practitioner"),
    Role.COMMUNITY_NURSE: _l("Community nurse"),
    Role.ADMIN: _l("Administrator"),
}
