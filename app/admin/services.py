"""Directory administration: organisations, sites and accounts. Services flush; the caller commits.

Each function checks every rule at once and raises ``ValidationFailed`` naming the fields,
before it changes anything; every change writes an audit row (field names only, never values).
"""
from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.auth.services import MIN_PASSWORD_LENGTH, PasswordPolicyError, check_password_policy, hash_password
from app.care.models import (
    ORGANISATION_KIND_LABELS, ROLE_ORGANISATION_KIND, Organisation, OrganisationKind, Professional, Site,
)
from app.core import audit
from app.core.errors import ValidationFailed
from app.core.roles import HOSPITAL_ROLES, Role
from app.core.validators import check_timezone, normalise_phone
from app.extensions import db

FINESS_RE = re.compile(r"^\d{9}$")
SITE_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,19}$")
RPPS_RE = re.compile(r"^\d{11}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
# Changing any of these ends the account's open sessions: its rights are no longer what they were.
SESSION_FIELDS = frozenset({"role", "organisation_id", "site_id"})


def _text(value: Any) -> str:
    return (value or "").strip()


def _required(data: dict[str, Any], name: str, errors: dict[str, str], max_len: int) -> str:
    value = _text(data.get(name))
    if not value:
        errors[name] = _("This field is required.")
    elif len(value) > max_len:
        errors[name] = _("At most %(n)d characters.", n=max_len)
    return value


def _phone(raw: Any, name: str, errors: dict[str, str], region: str, *, required: bool) -> str | None:
    raw = _text(raw)
    if not raw:
        if required:
            errors[name] = _("This field is required.")
        return None
    try:
        return normalise_phone(raw, region)
    except ValueError as exc:
        errors[name] = str(exc)
        return None


def _flush_unique(field: str, message: str) -> None:
    """Flush; a unique clash that slipped past the check (a concurrent request) becomes a field error."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise ValidationFailed({field: message}) from None


def _apply(obj, clean: dict[str, Any]) -> set[str]:
    for key, value in clean.items():
        setattr(obj, key, value)
    return set(audit.changed_fields(obj))


# --- organisations ---------------------------------------------------------------------------

def _kind_change_problem(org: Organisation, kind: str) -> str | None:
    roles = db.session.scalars(
        select(Professional.role).where(Professional.organisation_id == org.id).distinct()).all()
    if any(r in ROLE_ORGANISATION_KIND and ROLE_ORGANISATION_KIND[r] != kind for r in roles):
        return _("Accounts of this organisation have roles that do not fit this kind; move them first.")
    if kind != OrganisationKind.HOSPITAL and org.sites:
        return _("Only a hospital can have sites, and this organisation has some.")
    return None


def _clean_organisation(data: dict[str, Any], org: Organisation | None, region: str) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {"name": _required(data, "name", errors, 200)}
    kind = data.get("kind")
    if kind not in set(OrganisationKind):
        errors["kind"] = _("Choose a kind of organisation.")
    elif org is not None and kind != org.kind:
        problem = _kind_change_problem(org, kind)
        if problem:
            errors["kind"] = problem
    clean["kind"] = kind
    finess = _text(data.get("finess")).replace(" ", "")
    if finess and not FINESS_RE.match(finess):
        errors["finess"] = _("A FINESS number has 9 digits.")
    elif finess:
        clash = db.session.scalar(select(Organisation.id).where(Organisation.finess == finess))
        if clash is not None and (org is None or clash != org.id):
            errors["finess"] = _("Another organisation has this FINESS number.")
    clean["finess"] = finess or None
    clean["city"] = _text(data.get("city"))[:120] or None
    clean["phone"] = _phone(data.get("phone"), "phone", errors, region, required=False)
    clean["active"] = bool(data.get("active"))
    if errors:
        raise ValidationFailed(errors)
    return clean


def create_organisation(data: dict[str, Any], *, region: str = "FR") -> Organisation:
    org = Organisation(**_clean_organisation(data, None, region))
    db.session.add(org)
    _flush_unique("finess", _("Another organisation has this FINESS number."))
    audit.record("organisation_create", obj=org, detail={"kind": org.kind})
    return org


def update_organisation(org: Organisation, data: dict[str, Any], *, region: str = "FR") -> Organisation:
    changed = _apply(org, _clean_organisation(data, org, region))
    if changed:
        _flush_unique("finess", _("Another organisation has this FINESS number."))
        audit.record("organisation_update", obj=org, detail={"fields": sorted(changed)})
    return org


# --- sites -----------------------------------------------------------------------------------

def _clean_site(data: dict[str, Any], site: Site | None, region: str) -> dict[str, Any]:
    errors: dict[str, str] = {}
    org_id = data.get("organisation_id")
    org = db.session.get(Organisation, org_id) if org_id else None
    if org is None or org.kind != OrganisationKind.HOSPITAL:
        errors["organisation_id"] = _("Choose a hospital organisation.")
    elif site is not None and org.id != site.organisation_id:
        attached = db.session.scalar(select(func.count()).select_from(Professional)
                                     .where(Professional.site_id == site.id))
        if attached:
            errors["organisation_id"] = _("Accounts work at this site; move them before changing its organisation.")
    code = _text(data.get("code")).upper()
    if not SITE_CODE_RE.match(code):
        errors["code"] = _("2 to 20 capital letters, digits, '-' or '_'.")
    else:
        clash = db.session.scalar(select(Site.id).where(func.upper(Site.code) == code))
        if clash is not None and (site is None or clash != site.id):
            errors["code"] = _("Another site has this code.")
    clean: dict[str, Any] = {"organisation_id": org_id, "code": code, "name": _required(data, "name", errors, 200)}
    clean["timezone"] = _text(data.get("timezone"))
    try:
        check_timezone(clean["timezone"])
    except ValueError as exc:
        errors["timezone"] = str(exc)
    clean["hospital_phone"] = _phone(data.get("hospital_phone"), "hospital_phone", errors, region, required=True)
    weeks = data.get("s3_followup_weeks")
    if weeks not in (2, 4):
        errors["s3_followup_weeks"] = _("Every 2 or every 4 weeks.")
    clean["s3_followup_weeks"] = weeks
    clean["active"] = bool(data.get("active"))
    if errors:
        raise ValidationFailed(errors)
    return clean


def create_site(data: dict[str, Any], *, region: str = "FR") -> Site:
    site = Site(**_clean_site(data, None, region))
    db.session.add(site)
    _flush_unique("code", _("Another site has this code."))
    audit.record("site_create", obj=site, detail={"organisation_id": site.organisation_id})
    return site


def update_site(site: Site, data: dict[str, Any], *, region: str = "FR") -> Site:
    changed = _apply(site, _clean_site(data, site, region))
    if changed:
        _flush_unique("code", _("Another site has this code."))
        audit.record("site_update", obj=site, detail={"fields": sorted(changed)})
    return site


# --- accounts --------------------------------------------------------------------------------

def _password_error(password: str | None) -> str | None:
    try:
        check_password_policy(password or "")
    except PasswordPolicyError:
        return _("Use at least %(n)d characters, with at least 5 different ones.", n=MIN_PASSWORD_LENGTH)
    return None


def _check_placement(role: str, org: Organisation | None, site: Site | None, errors: dict[str, str]) -> None:
    """The organisation must fit the role; hospital staff need a site of that organisation, others none."""
    if role == Role.ADMIN:
        if site is not None:
            errors["site_id"] = _("Administrators have no site.")
        return
    kind = ROLE_ORGANISATION_KIND[Role(role)]
    if org is None:
        errors["organisation_id"] = _("Choose the organisation this person works for.")
    elif org.kind != kind:
        errors["organisation_id"] = _("This role needs an organisation of the kind: %(kind)s.",
                                      kind=ORGANISATION_KIND_LABELS[kind])
    if role in HOSPITAL_ROLES:
        if site is None:
            errors["site_id"] = _("Hospital staff need a site.")
        elif org is not None and site.organisation_id != org.id:
            errors["site_id"] = _("This site belongs to another organisation.")
    elif site is not None:
        errors["site_id"] = _("Community professionals have no hospital site.")


def _clean_account(data: dict[str, Any], prof: Professional | None, region: str,
                   errors: dict[str, str]) -> dict[str, Any]:
    email = _text(data.get("email")).lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        errors["email"] = _("Enter a valid e-mail address.")
    else:
        clash = db.session.scalar(select(Professional.id).where(func.lower(Professional.email) == email))
        if clash is not None and (prof is None or clash != prof.id):
            errors["email"] = _("An account with this e-mail already exists.")
    clean: dict[str, Any] = {
        "email": email,
        "first_name": _required(data, "first_name", errors, 100),
        "last_name": _required(data, "last_name", errors, 100),
    }
    role = data.get("role")
    org_id, site_id = data.get("organisation_id"), data.get("site_id")
    org = db.session.get(Organisation, org_id) if org_id else None
    site = db.session.get(Site, site_id) if site_id else None
    if org_id and org is None:
        errors["organisation_id"] = _("Unknown organisation.")
    if site_id and site is None:
        errors["site_id"] = _("Unknown site.")
    if role not in set(Role):
        errors["role"] = _("Choose a role.")
    else:
        _check_placement(role, org, site, errors)
    # An inactive organisation or site may be kept, not newly given.
    if org is not None and not org.active and (prof is None or prof.organisation_id != org.id):
        errors.setdefault("organisation_id", _("This organisation is inactive."))
    if site is not None and not site.active and (prof is None or prof.site_id != site.id):
        errors.setdefault("site_id", _("This site is inactive."))
    clean.update(role=role, organisation_id=org.id if org else None, site_id=site.id if site else None)
    clean["phone"] = _phone(data.get("phone"), "phone", errors, region, required=False)
    rpps = _text(data.get("rpps")).replace(" ", "")
    if rpps and not RPPS_RE.match(rpps):
        errors["rpps"] = _("An RPPS number has 11 digits.")
    clean["rpps"] = rpps or None
    language = data.get("language")
    if language not in ("fr", "en"):
        errors["language"] = _("Choose French or English.")
    clean["language"] = language
    if "active" in data:
        clean["active"] = bool(data["active"])
    return clean


def create_account(data: dict[str, Any], *, password: str, region: str = "FR") -> Professional:
    """A new login account; ``password`` is its first password (the policy applies)."""
    errors: dict[str, str] = {}
    clean = _clean_account(data, None, region, errors)
    problem = _password_error(password)
    if problem:
        errors["password"] = problem
    if errors:
        raise ValidationFailed(errors)
    prof = Professional(password_hash=hash_password(password), **clean)
    db.session.add(prof)
    _flush_unique("email", _("An account with this e-mail already exists."))
    audit.record("account_create", obj=prof, detail={"role": prof.role, "organisation_id": prof.organisation_id,
                                                     "site_id": prof.site_id})
    return prof


def update_account(prof: Professional, data: dict[str, Any], *, actor: Professional,
                   region: str = "FR") -> Professional:
    """Change an account; a new role, place or deactivation ends its open sessions."""
    errors: dict[str, str] = {}
    clean = _clean_account(data, prof, region, errors)
    if prof.id == actor.id:
        if clean.get("active") is False:
            errors["active"] = _("You cannot deactivate your own account.")
        if clean.get("role") != prof.role:
            errors["role"] = _("You cannot change your own role.")
    if errors:
        raise ValidationFailed(errors)
    changed = _apply(prof, clean)
    if not changed:
        return prof
    end_sessions = bool(changed & SESSION_FIELDS) or ("active" in changed and not prof.active)
    if end_sessions:
        prof.session_version = (prof.session_version or 1) + 1
    _flush_unique("email", _("An account with this e-mail already exists."))
    audit.record("account_update", obj=prof, detail={"fields": sorted(changed), "sessions_ended": end_sessions})
    return prof


def set_account_active(prof: Professional, active: bool, *, actor: Professional) -> bool:
    """Deactivate (ending every session) or reactivate an account; False when nothing changed."""
    if not active and prof.id == actor.id:
        raise ValidationFailed({"active": _("You cannot deactivate your own account.")})
    if bool(prof.active) == active:
        return False
    prof.active = active
    if not active:
        prof.session_version = (prof.session_version or 1) + 1
    db.session.flush()
    audit.record("account_reactivate" if active else "account_deactivate", obj=prof)
    return True


def reset_password(prof: Professional, password: str, *, actor: Professional) -> None:
    """Set a new password chosen by an administrator; the account's open sessions end."""
    problem = _password_error(password)
    if problem:
        raise ValidationFailed({"password": problem})
    prof.password_hash = hash_password(password)
    prof.session_version = (prof.session_version or 1) + 1
    db.session.flush()
    audit.record("password_reset", obj=prof, detail={"own_account": prof.id == actor.id})
