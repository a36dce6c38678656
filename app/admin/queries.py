"""Read-side queries for the administration pages; each list costs a fixed number of statements."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import joinedload

from app.care.models import Organisation, OrganisationKind, Professional, Site
from app.core.audit import AuditEvent
from app.core.time import utcnow
from app.extensions import db


@dataclass(frozen=True)
class Page:
    rows: list
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class AccountFilters:
    q: str = ""
    role: str = ""
    site_id: int | None = None
    active: bool | None = None


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with its wildcards escaped."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _paginate(stmt, order_by, page: int, per_page: int) -> Page:
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    page = max(1, page)
    rows = db.session.execute(stmt.order_by(*order_by).limit(per_page).offset((page - 1) * per_page)).all()
    return Page(rows=[r if len(r) > 1 else r[0] for r in rows], total=total, page=page, per_page=per_page)


def admin_counts() -> dict[str, int]:
    """The figures on the administration home page, in one statement."""
    since = utcnow() - timedelta(hours=24)
    count = func.count()
    row = db.session.execute(select(
        select(count).select_from(Organisation).where(Organisation.active.is_(True)).scalar_subquery(),
        select(count).select_from(Site).where(Site.active.is_(True)).scalar_subquery(),
        select(count).select_from(Professional).where(Professional.active.is_(True)).scalar_subquery(),
        select(count).select_from(Professional).where(Professional.active.is_(False)).scalar_subquery(),
        select(count).select_from(AuditEvent).where(AuditEvent.at >= since).scalar_subquery(),
    )).one()
    keys = ("organisations", "sites", "active_accounts", "inactive_accounts", "audit_last_day")
    return dict(zip(keys, (int(v or 0) for v in row)))


def organisation_page(*, kind: str, q: str, page: int, per_page: int) -> Page:
    """Organisations with their numbers of sites and accounts; rows are (org, sites, accounts)."""
    sites = (select(func.count()).select_from(Site).where(Site.organisation_id == Organisation.id)
             .correlate(Organisation).scalar_subquery())
    accounts = (select(func.count()).select_from(Professional)
                .where(Professional.organisation_id == Organisation.id).correlate(Organisation).scalar_subquery())
    stmt = select(Organisation, sites.label("sites"), accounts.label("accounts"))
    if kind:
        stmt = stmt.where(Organisation.kind == kind)
    if q.strip():
        pattern = _like(q.strip())
        stmt = stmt.where(or_(func.lower(Organisation.name).like(pattern, escape="\\"),
                              func.lower(Organisation.city).like(pattern, escape="\\"),
                              Organisation.finess == q.strip()))
    return _paginate(stmt, (Organisation.name, Organisation.id), page, per_page)


def site_page(*, q: str, page: int, per_page: int) -> Page:
    """Sites with their organisation and number of active accounts; rows are (site, accounts)."""
    accounts = (select(func.count()).select_from(Professional)
                .where(Professional.site_id == Site.id, Professional.active.is_(True))
                .correlate(Site).scalar_subquery())
    stmt = select(Site, accounts.label("accounts")).options(joinedload(Site.organisation))
    if q.strip():
        pattern = _like(q.strip())
        stmt = stmt.where(or_(func.lower(Site.name).like(pattern, escape="\\"),
                              func.lower(Site.code).like(pattern, escape="\\")))
    return _paginate(stmt, (Site.code, Site.id), page, per_page)


def account_page(filters: AccountFilters, *, page: int, per_page: int) -> Page:
    stmt = select(Professional).options(joinedload(Professional.organisation), joinedload(Professional.site))
    conditions = []
    if filters.q.strip():
        pattern = _like(filters.q.strip())
        full_name = func.lower(Professional.first_name + " " + Professional.last_name)
        conditions.append(or_(func.lower(Professional.email).like(pattern, escape="\\"),
                              func.lower(Professional.last_name).like(pattern, escape="\\"),
                              full_name.like(pattern, escape="\\")))
    if filters.role:
        conditions.append(Professional.role == filters.role)
    if filters.site_id is not None:
        conditions.append(Professional.site_id == filters.site_id)
    if filters.active is not None:
        conditions.append(Professional.active.is_(filters.active))
    if conditions:
        stmt = stmt.where(and_(*conditions))
    return _paginate(stmt, (Professional.last_name, Professional.first_name, Professional.id), page, per_page)


def organisation_choices() -> list[tuple[int, str, str]]:
    """(id, name and city, kind) of every organisation, grouped by kind."""
    orgs = db.session.scalars(select(Organisation).order_by(Organisation.kind, Organisation.name)).all()
    return [(o.id, o.name + (f" ({o.city})" if o.city else ""), o.kind) for o in orgs]


def hospital_choices() -> list[tuple[int, str]]:
    rows = db.session.scalars(select(Organisation).where(Organisation.kind == OrganisationKind.HOSPITAL)
                              .order_by(Organisation.name))
    return [(o.id, o.name) for o in rows]


def site_choices() -> list[tuple[int, str]]:
    rows = db.session.scalars(select(Site).order_by(Site.code))
    return [(s.id, f"{s.code} · {s.name}") for s in rows]
