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
    # REST API (bearer token; the session cookie is ignored). Bodies are "{}": a 422 is "allowed".
    "api.openapi": Route("GET", "/api/v1/openapi.json", EVERYONE, api=True, note="public document, no data"),
    "api.list_drugs": Route("GET", "/api/v1/drugs", CLINICAL, api=True),
    "api.list_patients": Route("GET", "/api/v1/patients", CLINICAL, api=True),
    "api.create_patient": Route("POST", "/api/v1/patients", EDITORS, api=True),
    "api.get_patient": Route("GET", "/api/v1/patients/{patient}", CLINICAL, api=True, patient_scoped=True),
    "api.update_patient": Route("PATCH", "/api/v1/patients/{patient}", EDITORS, api=True, patient_scoped=True),
    "api.get_care_team": Route("GET", "/api/v1/patients/{patient}/care-team", CLINICAL, api=True,
                               patient_scoped=True),
    "api.add_care_team_member": Route("POST", "/api/v1/patients/{patient}/care-team", EDITORS, api=True,
                                      patient_scoped=True),
    "api.list_prescriptions": Route("GET", "/api/v1/patients/{patient}/prescriptions", CLINICAL, api=True,
                                    patient_scoped=True),
    "api.add_prescription": Route("POST", "/api/v1/patients/{patient}/prescriptions", PRESCRIBERS, api=True,
                                  patient_scoped=True),
    "api.add_prescription_event": Route("POST", "/api/v1/patients/{patient}/prescriptions/{rx}/events",
                                        PRESCRIBERS, api=True, patient_scoped=True),
    "api.get_enrolment": Route("GET", "/api/v1/patients/{patient}/enrolment", CLINICAL, api=True,
                               patient_scoped=True),
    "api.change_enrolment": Route("PATCH", "/api/v1/patients/{patient}/enrolment", EDITORS, api=True,
                                  patient_scoped=True),
    # Triage (hospital team of the patient's site).
    "triage.queue": Route("GET", "/triage", HOSPITAL),
    "triage.counts": Route("GET", "/triage/counts", HOSPITAL),
    "triage.alert": Route("GET", "/alerts/{alert}", HOSPITAL),
    "triage.acknowledge": Route("POST", "/alerts/{alert}/acknowledge", HOSPITAL),
    "triage.add_action": Route("POST", "/alerts/{alert}/actions", HOSPITAL),
    "triage.resolve": Route("POST", "/alerts/{alert}/resolve", HOSPITAL),
    "triage.task_done": Route("POST", "/tasks/{task}/done", HOSPITAL),
    "checkin_pages.nurse_call": Route("GET", "/patients/{patient}/calls/new", HOSPITAL, patient_scoped=True),
    "checkin_pages.summary": Route("GET", "/patients/{patient}/summary", HOSPITAL, patient_scoped=True),
    # Community circuit and adherence.
    "adherence.new_dispensing": Route("GET", "/patients/{patient}/dispensings/new",
                                      frozenset({HPHARM, CPHARM}), patient_scoped=True),
    "adherence.add_report": Route("POST", "/patients/{patient}/adherence-reports",
                                  frozenset({NURSE, HPHARM, CPHARM, GP, CNURSE}), patient_scoped=True),
    "community.my_patients": Route("GET", "/community/", frozenset({CPHARM, GP, CNURSE, HPHARM})),
    "community.new_interview": Route("GET", "/patients/{patient}/interviews/new", frozenset({CPHARM, HPHARM}),
                                     patient_scoped=True),
    "community.reconciliation": Route("GET", "/patients/{patient}/reconciliation", frozenset({CPHARM, HPHARM}),
                                      patient_scoped=True),
    "community.review_reconciliation": Route("POST", "/patients/{patient}/reconciliation/{member}/review",
                                             frozenset({HPHARM}), patient_scoped=True,
                                             note="an empty note answers 422 before the list is looked up"),
    "community.new_visit": Route("GET", "/patients/{patient}/visits/new", frozenset({GP, CNURSE}),
                                 patient_scoped=True),
    # Development phone simulator (DEMO_TOOLS only: development and tests).
    "devphone.index": Route("GET", "/dev/phone/", CLINICAL),
    "devphone.phone": Route("GET", "/dev/phone/{patient}", CLINICAL, patient_scoped=True),
    "devphone.start": Route("POST", "/dev/phone/{patient}/start", CLINICAL, patient_scoped=True),
    # Administration.
    "admin.index": Route("GET", "/admin/", frozenset({ADMIN})),
    "admin.organisations": Route("GET", "/admin/organisations", frozenset({ADMIN})),
    "admin.new_organisation": Route("GET", "/admin/organisations/new", frozenset({ADMIN})),
    "admin.edit_organisation": Route("GET", "/admin/organisations/{organisation}/edit", frozenset({ADMIN})),
    "admin.sites": Route("GET", "/admin/sites", frozenset({ADMIN})),
    "admin.new_site": Route("GET", "/admin/sites/new", frozenset({ADMIN})),
    "admin.edit_site": Route("GET", "/admin/sites/{site}/edit", frozenset({ADMIN})),
    "admin.accounts": Route("GET", "/admin/accounts", frozenset({ADMIN})),
    "admin.new_account": Route("GET", "/admin/accounts/new", frozenset({ADMIN})),
    "admin.edit_account": Route("GET", "/admin/accounts/{account}/edit", frozenset({ADMIN})),
    "admin.reset_password": Route("GET", "/admin/accounts/{account}/password", frozenset({ADMIN})),
    "admin.deactivate_account": Route("POST", "/admin/accounts/{account}/deactivate", frozenset({ADMIN})),
    "admin.reactivate_account": Route("POST", "/admin/accounts/{account}/reactivate", frozenset({ADMIN})),
    "admin.audit": Route("GET", "/admin/audit", frozenset({ADMIN})),
    "rules_admin.index": Route("GET", "/admin/rules/", frozenset({ADMIN})),
    "rules_admin.edit": Route("GET", "/admin/rules/edit", frozenset({ADMIN})),
    "jobs_admin.index": Route("GET", "/admin/jobs/", frozenset({ADMIN})),
    "oncall_admin.index": Route("GET", "/admin/oncall/", frozenset({ADMIN})),
    "oncall_admin.rota": Route("GET", "/admin/oncall/sites/{site}/rota", frozenset({ADMIN})),
    "oncall_admin.remove_shift": Route("POST", "/admin/oncall/sites/{site}/rota/{shift}/delete", frozenset({ADMIN})),
    "oncall_admin.chain": Route("GET", "/admin/oncall/sites/{site}/chain", frozenset({ADMIN})),
    "oncall_admin.remove_step": Route("POST", "/admin/oncall/sites/{site}/chain/{step}/delete", frozenset({ADMIN})),
    "oncall_admin.move_step": Route("POST", "/admin/oncall/sites/{site}/chain/{step}/move", frozenset({ADMIN})),
    "oncall_admin.step_channel": Route("POST", "/admin/oncall/sites/{site}/chain/{step}/channel", frozenset({ADMIN})),
    "reports.statements": Route("GET", "/reports/statements", HOSPITAL | {ADMIN}),
    "reports.indicators": Route("GET", "/reports/indicators", HOSPITAL | {ADMIN}),
    "reports.tariffs": Route("GET", "/admin/tariffs", frozenset({ADMIN})),
    "oncall_admin.policy": Route("GET", "/admin/oncall/sites/{site}/policy", frozenset({ADMIN})),
    "monitoring.index": Route("GET", "/admin/platform/", frozenset({ADMIN})),
}

# Endpoints deliberately outside the role matrix, with the reason and the test that covers them.
EXEMPT: dict[str, str] = {
    "static": "public assets (CSS, JS), no data",
    "webhooks.inbound_sms": "Twilio webhook: X-Twilio-Signature instead of a session "
                            "(tests/test_notifications_webhooks.py: invalid signature -> 403, nothing stored)",
    "webhooks.status_callback": "Twilio webhook, signature-checked (tests/test_notifications_webhooks.py)",
    "checkin_voice.start": "Twilio voice webhook: signature + signed check-in token (tests/test_checkin_voice.py)",
    "checkin_voice.answer": "Twilio voice webhook: signature + signed check-in token (tests/test_checkin_voice.py)",
    "checkin_voice.silence": "Twilio voice webhook: signature + signed check-in token (tests/test_checkin_voice.py)",
    "paging.link": "acknowledgement link sent by SMS: the single-use token is the credential "
                   "(tests/test_oncall_paging.py: forged, expired and used tokens refused)",
    "paging.link_acknowledge": "as paging.link, POST with CSRF (tests/test_oncall_paging.py)",
    "paging.voice_page": "Twilio voice webhook of a page's call: signature + signed URL holding the page's "
                         "token (tests/test_oncall_voice.py)",
    "paging.voice_page_key": "as paging.voice_page, the key pressed (tests/test_oncall_voice.py)",
    "monitoring.voice_fault": "Twilio voice webhook of a fault report's call: signature + signed URL "
                              "(tests/test_platform_watch.py); says nothing about any patient",
    "health.healthz": "for external monitors: booleans and ages only, no patient data "
                      "(tests/test_health.py)",
}
