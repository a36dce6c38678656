"""Monthly statements: what the ledger owes each site and each professional, per activity."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select

from app.care.models import Organisation, Professional, Site
from app.extensions import db

from .models import LedgerEntry


@dataclass
class Line:
    activity: str
    entries: int
    amount_cents: int


@dataclass
class Recipient:
    kind: str  # "site" or "professional"
    id: int
    name: str
    site_code: str
    detail: str = ""  # role and organisation of a professional
    lines: list[Line] = field(default_factory=list)

    @property
    def total_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)


@dataclass
class Statement:
    month: str
    sites: list[Recipient]
    professionals: list[Recipient]

    @property
    def total_cents(self) -> int:
        return sum(r.total_cents for r in self.sites) + sum(r.total_cents for r in self.professionals)


def monthly_statement(month: str, site_ids: Iterable[int] | None) -> Statement:
    """Two grouped queries whatever the number of sites. ``site_ids`` None: every site."""
    scope = [LedgerEntry.period == month]
    if site_ids is not None:
        scope.append(LedgerEntry.site_id.in_(list(site_ids)))
    count, total = func.count(LedgerEntry.id), func.sum(LedgerEntry.amount_cents)
    by_site = (select(Site.id, Site.code, Site.name, LedgerEntry.activity, count, total)
               .join(Site, Site.id == LedgerEntry.site_id)
               .where(*scope, LedgerEntry.professional_id.is_(None))
               .group_by(Site.id, Site.code, Site.name, LedgerEntry.activity)
               .order_by(Site.code, LedgerEntry.activity))
    sites: dict[int, Recipient] = {}
    for site_id, code, name, activity, n, cents in db.session.execute(by_site):
        r = sites.setdefault(site_id, Recipient("site", site_id, name, code))
        r.lines.append(Line(activity, n, int(cents or 0)))
    by_prof = (select(Professional.id, Professional.last_name, Professional.first_name, Professional.role,
                      Organisation.name, Site.code, LedgerEntry.activity, count, total)
               .join(Professional, Professional.id == LedgerEntry.professional_id)
               .outerjoin(Organisation, Organisation.id == LedgerEntry.organisation_id)
               .join(Site, Site.id == LedgerEntry.site_id)
               .where(*scope)
               .group_by(Professional.id, Professional.last_name, Professional.first_name, Professional.role,
                         Organisation.name, Site.code, LedgerEntry.activity)
               .order_by(Site.code, Professional.last_name, Professional.id, LedgerEntry.activity))
    professionals: dict[tuple[int, str], Recipient] = {}
    for prof_id, last, first_name, role, org, code, activity, n, cents in db.session.execute(by_prof):
        r = professionals.setdefault((prof_id, code), Recipient(
            "professional", prof_id, f"{last.upper()} {first_name}", code, detail=f"{role} · {org or ''}"))
        r.lines.append(Line(activity, n, int(cents or 0)))
    return Statement(month, list(sites.values()), list(professionals.values()))


def euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


CSV_HEADER = ("month", "site", "recipient_type", "recipient_id", "recipient", "activity", "entries",
              "amount_eur")


def statement_csv(statement: Statement) -> str:
    """One line per recipient and activity; no patient appears in it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in [*statement.sites, *statement.professionals]:
        for line in r.lines:
            writer.writerow((statement.month, r.site_code, r.kind, r.id, r.name, line.activity, line.entries,
                             euros(line.amount_cents)))
    return out.getvalue()
