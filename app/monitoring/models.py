"""Platform faults: one row per incident of a health check, from its first failed observation to
its recovery, with when the technical contacts were told."""
from __future__ import annotations

from app.core.db import UTCDateTime
from app.core.time import utcnow
from app.extensions import db


class PlatformFault(db.Model):
    __tablename__ = "platform_fault"

    id = db.Column(db.Integer, primary_key=True)
    check_name = db.Column(db.String(40), nullable=False)
    started_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)  # first seen failing
    last_seen_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    notified_at = db.Column(UTCDateTime())  # the first report to a technical contact
    cleared_at = db.Column(UTCDateTime())  # seen passing again

    __table_args__ = (
        # One open incident per check: two watchers at once cannot open two.
        db.Index("uq_platform_fault_open", "check_name", unique=True,
                 postgresql_where=db.text("cleared_at IS NULL"), sqlite_where=db.text("cleared_at IS NULL")),
        db.Index("ix_platform_fault_started", "started_at"),
    )

    def __repr__(self) -> str:
        state = "cleared" if self.cleared_at else "open"
        return f"<PlatformFault {self.id} {self.check_name} {state}>"
