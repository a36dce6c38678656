"""Login attempts (for throttling) and API tokens (for API clients)."""
from __future__ import annotations

from app.core.db import UTCDateTime
from app.core.time import utcnow
from app.extensions import db


class LoginAttempt(db.Model):
    __tablename__ = "login_attempt"

    id = db.Column(db.Integer, primary_key=True)
    # SHA-256 of the lower-cased login: throttles per account without storing typos of e-mails.
    login_digest = db.Column(db.String(64), nullable=False)
    ip = db.Column(db.String(64))
    success = db.Column(db.Boolean, nullable=False)
    at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (
        db.Index("ix_login_attempt_digest_at", "login_digest", "at"),
        db.Index("ix_login_attempt_ip_at", "ip", "at"),
    )

    def __repr__(self) -> str:
        return f"<LoginAttempt {self.id} {self.success}>"


class ApiToken(db.Model):
    """Bearer token for an API client acting as a professional; only its hash is kept."""

    __tablename__ = "api_token"

    id = db.Column(db.Integer, primary_key=True)
    professional_id = db.Column(db.Integer, db.ForeignKey("professional.id"), nullable=False, index=True)
    name = db.Column(db.String(100), nullable=False)
    token_digest = db.Column(db.String(64), nullable=False, unique=True)
    prefix = db.Column(db.String(12), nullable=False)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at = db.Column(UTCDateTime(), nullable=False)
    revoked_at = db.Column(UTCDateTime())
    last_used_at = db.Column(UTCDateTime())

    professional = db.relationship("Professional")

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} {self.prefix}>"
