"""The written access matrix: for every route, which roles may use it.

`test_access_matrix.py` walks every rule of the URL map as every role and checks
the answer against this table; a route missing here fails that test.

Placeholders in paths: {patient} (a patient of the nurse's site whose care team
includes the community professionals), {member} (a care-team row of that
patient), {rx} (its prescription), {own_token} (an API token of the caller),
{organisation}, {site}, {account} (directory rows), {alert}, {task}, {checkin}.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ANON = "anonymous"
NURSE = "coordinating_nurse"
ONCO = "oncologist"
HPHARM = "hospital_pharmacist"
CPHARM = "community_pharmacist"
GP = "gp"
CNURSE = "community_nurse"
ADMIN = "admin"

ROLES = (ANON, NURSE, ONCO, HPHARM, CPHARM, GP, CNURSE, ADMIN)
HOSPITAL = frozenset({NURSE, ONCO, HPHARM})
COMMUNITY = frozenset({CPHARM, GP, CNURSE})
CLINICAL = HOSPITAL | COMMUNITY
SIGNED_IN = CLINICAL | {ADMIN}
EVERYONE = frozenset(ROLES)
EDITORS = frozenset({NURSE, ONCO})
PRESCRIBERS = frozenset({NURSE, ONCO, HPHARM})


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    allowed: frozenset
    api: bool = False          # authenticate with a bearer token instead of the session
    patient_scoped: bool = False  # also checked with a patient outside everyone's scope
    note: str = ""


MATRIX: dict[str, Route] = {
    # Public pages.
    "auth.login": Route("GET", "/login", EVERYONE),
    "auth.set_language": Route("POST", "/language/en", EVERYONE),
    "auth.logout": Route("POST", "/logout", EVERYONE, note="signing out is harmless for anyone"),
    # Own account.
    "auth.api_tokens": Route("GET", "/account/tokens", SIGNED_IN),
    "auth.revoke_token": Route("POST", "/account/tokens/{own_token}/revoke", SIGNED_IN),
    # Patients.
    "web.dashboard": Route("GET", "/", CLINICAL | {ADMIN}, note="admins are redirected to the admin pages"),
    "web.enrol": Route("GET", "/patients/new", EDITORS),
    "web.patient": Route("GET", "/patients/{patient}", CLINICAL, patient_scoped=True),
    "web.edit_patient": Route("GET", "/patients/{patient}/edit", EDITORS, patient_scoped=True),
    "web.add_member": Route("POST", "/patients/{patient}/care-team", EDITORS, patient_scoped=True),
    "web.end_member": Route("POST", "/patients/{patient}/care-team/{member}/end", EDITORS, patient_scoped=True),
    "web.new_prescription": Route("GET", "/patients/{patient}/prescriptions/new", PRESCRIBERS, patient_scoped=True),
    "web.prescription_event": Route("POST", "/patients/{patient}/prescriptions/{rx}/events", PRESCRIBERS,
                                    patient_scoped=True),
    "web.change_enrolment": Route("POST", "/patients/{patient}/enrolment", EDITORS, patient_scoped=True),
    "web.end_enrolment": Route("POST", "/patients/{patient}/enrolment/end", EDITORS, patient_scoped=True),
    # Administration.
    "admin.index": Route("GET", "/admin/", frozenset({ADMIN})),
}

# Endpoints deliberately outside the role matrix, with the reason and the test that covers them.
EXEMPT: dict[str, str] = {
    "static": "public assets (CSS, JS), no data",
}
