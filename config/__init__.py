"""Settings per environment.

Every value can be overridden from the environment with the ``ONCOLINK_`` prefix
(``ONCOLINK_DATABASE_URL``, ``ONCOLINK_SECRET_KEY``, ...). Secrets have no default
outside development and testing; production refuses to start without them.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "ONCOLINK_"


def _env(name: str, default=None):
    return os.environ.get(PREFIX + name, default)


def _env_bool(name: str, default: bool) -> bool:
    value = _env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = _env(name)
    return int(value) if value not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    value = _env(name)
    return float(value) if value not in (None, "") else default


def _env_thresholds(name: str, default: str) -> dict[str, float]:
    """"imatinib:0.90,nilotinib:0.90" -> {"imatinib": 0.9, "nilotinib": 0.9}."""
    out = {}
    for part in (_env(name, default) or "").split(","):
        inn, _, value = part.strip().partition(":")
        if inn and value:
            out[inn.strip().lower()] = float(value)
    return out


class ConfigError(RuntimeError):
    """Raised when the settings are unsafe or incomplete for the environment."""


class BaseConfig:
    ENV_NAME = "base"
    SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL", f"sqlite:///{ROOT / 'instance' / 'oncolink.db'}")
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    # PostgreSQL: seconds before giving up a connection attempt or an unacknowledged send (app/__init__.py).
    DATABASE_CONNECT_TIMEOUT_SECONDS = _env_float("DATABASE_CONNECT_TIMEOUT_SECONDS", 5.0)
    SECRET_KEY = _env("SECRET_KEY")
    # Sessions: signed cookie, never readable by scripts, SameSite, short lived.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", True)
    SESSION_IDLE_MINUTES = _env_int("SESSION_IDLE_MINUTES", 15)
    SESSION_ABSOLUTE_HOURS = _env_int("SESSION_ABSOLUTE_HOURS", 10)
    REMEMBER_COOKIE_DURATION = 0
    LOGIN_MAX_FAILURES = _env_int("LOGIN_MAX_FAILURES", 5)
    LOGIN_MAX_FAILURES_PER_IP = _env_int("LOGIN_MAX_FAILURES_PER_IP", 30)
    LOGIN_LOCK_MINUTES = _env_int("LOGIN_LOCK_MINUTES", 15)
    MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 256 * 1024)
    WTF_CSRF_TIME_LIMIT = None  # bounded by the session lifetime instead
    BABEL_DEFAULT_LOCALE = "fr"
    BABEL_DEFAULT_TIMEZONE = "Europe/Paris"
    LANGUAGES = ("fr", "en")
    DEFAULT_TIMEZONE = "Europe/Paris"
    DEFAULT_PHONE_REGION = _env("DEFAULT_PHONE_REGION", "FR")
    PAGE_SIZE = _env_int("PAGE_SIZE", 25)
    PROXY_FIX = _env_bool("PROXY_FIX", False)
    # Notifications (issue 3). Credentials come only from the environment.
    SMS_PROVIDER = _env("SMS_PROVIDER", "console")
    TWILIO_ACCOUNT_SID = _env("TWILIO_ACCOUNT_SID")
    TWILIO_AUTH_TOKEN = _env("TWILIO_AUTH_TOKEN")
    TWILIO_FROM_NUMBER = _env("TWILIO_FROM_NUMBER")
    TWILIO_MESSAGING_SERVICE_SID = _env("TWILIO_MESSAGING_SERVICE_SID")
    TWILIO_API_BASE_URL = _env("TWILIO_API_BASE_URL")  # None: Twilio's own
    PUBLIC_BASE_URL = _env("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    TWILIO_TIMEOUT_SECONDS = _env_float("TWILIO_TIMEOUT_SECONDS", 10.0)
    # Outbox dispatch, in messages per second; Twilio counts segments (our texts take 1 or 2), and
    # queues, first in first out per sender, whatever goes beyond the sender's rate: keep under it.
    # Default: a Twilio messaging service's default 10 segments/s (e.g. an alphanumeric sender) for
    # texts of 2 segments. A French short code: 100 segments/s -> 50. A long code: 1 segment/s -> 0.5.
    OUTBOX_RATE_PER_SECOND = _env_float("OUTBOX_RATE_PER_SECOND", 5.0)
    OUTBOX_RATE_BURST = _env_float("OUTBOX_RATE_BURST", 0.0)  # 0: rate / 10, at least 1
    OUTBOX_BATCH_SIZE = _env_int("OUTBOX_BATCH_SIZE", 50)
    # Threads that call the provider at once (each with its own Twilio client); results are
    # recorded by the dispatcher's own thread, so at most twice this many chains of sends are
    # unrecorded when a process dies (reconciled on the next claim).
    OUTBOX_SEND_WORKERS = _env_int("OUTBOX_SEND_WORKERS", 4)
    # Urgent lane (safety replies, pages, fault reports): claimed before any routine row, polled
    # for every URGENT_POLL_SECONDS while a batch is sent, sent on URGENT_WORKERS threads of its own;
    # routine sends never use more than (1 - URGENT_RESERVE) of the rate.
    OUTBOX_URGENT_RESERVE = _env_float("OUTBOX_URGENT_RESERVE", 0.1)
    OUTBOX_URGENT_WORKERS = _env_int("OUTBOX_URGENT_WORKERS", 2)
    OUTBOX_URGENT_POLL_SECONDS = _env_float("OUTBOX_URGENT_POLL_SECONDS", 0.5)
    OUTBOX_TIME_BUDGET_SECONDS = _env_float("OUTBOX_TIME_BUDGET_SECONDS", 50.0)
    OUTBOX_LEASE_SECONDS = _env_float("OUTBOX_LEASE_SECONDS", 120.0)
    OUTBOX_MAX_ATTEMPTS = _env_int("OUTBOX_MAX_ATTEMPTS", 8)
    OUTBOX_BACKOFF_BASE_SECONDS = _env_float("OUTBOX_BACKOFF_BASE_SECONDS", 30.0)
    OUTBOX_BACKOFF_MAX_SECONDS = _env_float("OUTBOX_BACKOFF_MAX_SECONDS", 3600.0)
    OUTBOX_BACKOFF_JITTER = _env_float("OUTBOX_BACKOFF_JITTER", 0.2)
    # Clock difference tolerated between us and the provider when reconciling.
    OUTBOX_RECONCILE_SKEW_SECONDS = _env_float("OUTBOX_RECONCILE_SKEW_SECONDS", 120.0)
    # Inbound SMS are queued by the webhook and read by the process-inbound job (every 2 s).
    INBOUND_TIME_BUDGET_SECONDS = _env_float("INBOUND_TIME_BUDGET_SECONDS", 50.0)
    # Unread this long: the triage page warns that nothing reads the queue.
    INBOUND_STALE_SECONDS = _env_float("INBOUND_STALE_SECONDS", 120.0)
    # GET /healthz answers 503 when a due message has waited this long in the outbox.
    HEALTH_OUTBOX_STALE_SECONDS = _env_float("HEALTH_OUTBOX_STALE_SECONDS", 600.0)
    # Webhook spool (issue 18): a signed request the database cannot take is kept in this local
    # SQLite file (default <instance>/webhook-spool.sqlite3) until the database answers again.
    SPOOL_PATH = _env("SPOOL_PATH")
    SPOOL_MAX_MB = _env_float("SPOOL_MAX_MB", 256.0)  # beyond this the webhooks answer 503
    SPOOL_MAX_ATTEMPTS = _env_int("SPOOL_MAX_ATTEMPTS", 10)  # refusals (not outages) before set aside
    SPOOL_RETRY_MAX_SECONDS = _env_float("SPOOL_RETRY_MAX_SECONDS", 1.0)  # drain retry while it is down
    HEALTH_SPOOL_STALE_SECONDS = _env_float("HEALTH_SPOOL_STALE_SECONDS", 60.0)  # /healthz 503 beyond
    # ... or when more than this fraction of the sends tried in the window failed (at least MIN tried).
    HEALTH_SEND_ERROR_RATE = _env_float("HEALTH_SEND_ERROR_RATE", 0.5)
    HEALTH_SEND_ERROR_MIN_SENDS = _env_int("HEALTH_SEND_ERROR_MIN_SENDS", 10)
    HEALTH_SEND_ERROR_WINDOW_SECONDS = _env_float("HEALTH_SEND_ERROR_WINDOW_SECONDS", 900.0)
    # The platform's own faults (a health check failing this long) are told to each site's technical
    # contact (its escalation policy) and to this platform-wide one, by SMS, voice or both.
    PLATFORM_TECH_CONTACT_PHONE = _env("PLATFORM_TECH_CONTACT_PHONE")
    PLATFORM_TECH_CONTACT_CHANNEL = _env("PLATFORM_TECH_CONTACT_CHANNEL", "sms")
    PLATFORM_FAULT_DELAY_MINUTES = _env_int("PLATFORM_FAULT_DELAY_MINUTES", 5)
    HOSPITAL_PHONE_DEFAULT = _env("HOSPITAL_PHONE_DEFAULT", "+33100000000")
    # Check-ins (issue 3): planning horizon, chasing delays, call retries.
    CHECKIN_PLAN_HORIZON_HOURS = _env_int("CHECKIN_PLAN_HORIZON_HOURS", 48)
    CHECKIN_REMINDER_HOURS = _env_int("CHECKIN_REMINDER_HOURS", 24)
    CHECKIN_CALL_TASK_HOURS = _env_int("CHECKIN_CALL_TASK_HOURS", 72)
    CHECKIN_CLOSE_HOURS = _env_int("CHECKIN_CLOSE_HOURS", 0)  # 0: close at the end of the period
    CHECKIN_CALL_RETRY_MINUTES = _env_int("CHECKIN_CALL_RETRY_MINUTES", 30)
    CHECKIN_CALL_MAX_ATTEMPTS = _env_int("CHECKIN_CALL_MAX_ATTEMPTS", 2)
    CHECKIN_VOICE_TIMEOUT_SECONDS = _env_int("CHECKIN_VOICE_TIMEOUT_SECONDS", 8)
    CHECKIN_BATCH_SIZE = _env_int("CHECKIN_BATCH_SIZE", 500)
    CHECKIN_SEND_WINDOW_HOURS = _env_int("CHECKIN_SEND_WINDOW_HOURS", 12)  # from the patient's hour
    # Scheduler: one active instance holds a database lease; standbys take it over once it
    # expires. The timing model of Kubernetes' leader election (client-go): lease duration,
    # renew deadline (0: two thirds of the lease), retry period. With these defaults a standby
    # holds the lease within 15 s of the holder's death and 3 s of its clean stop (measured by
    # tests/test_jobs_failover.py).
    SCHEDULER_LEASE_SECONDS = _env_float("SCHEDULER_LEASE_SECONDS", 10.0)
    SCHEDULER_RENEW_DEADLINE_SECONDS = _env_float("SCHEDULER_RENEW_DEADLINE_SECONDS", 0.0)
    SCHEDULER_RETRY_SECONDS = _env_float("SCHEDULER_RETRY_SECONDS", 1.0)
    SCHEDULER_MAX_WORKERS = _env_int("SCHEDULER_MAX_WORKERS", 4)
    # A standby scheduler runs the jobs marked on_standby (the platform watcher) itself.
    SCHEDULER_STANDBY_DUTIES = _env_bool("SCHEDULER_STANDBY_DUTIES", True)
    JOB_RUN_RETENTION_DAYS = _env_int("JOB_RUN_RETENTION_DAYS", 14)
    # A module whose ``JOBS`` replaces app.jobs.registry.JOBS (tests, special deployments).
    JOBS_MODULE = _env("JOBS_MODULE")
    # Adherence (issue 5). Defaults from CLINICAL.md, for each site to review: PDC below
    # ADHERENCE_PDC_ALERT is non-adherence (orange); per drug, below the "watch" threshold is
    # yellow (imatinib in CML: 90%). Measured over ADHERENCE_ALERT_WINDOW days ("30" or "90").
    ADHERENCE_PDC_ALERT = _env_float("ADHERENCE_PDC_ALERT", 0.80)
    ADHERENCE_PDC_WATCH = _env_thresholds("ADHERENCE_PDC_WATCH", "imatinib:0.90")
    ADHERENCE_ALERT_WINDOW = _env("ADHERENCE_ALERT_WINDOW", "90")
    ADHERENCE_MIN_NEEDED_DAYS = _env_int("ADHERENCE_MIN_NEEDED_DAYS", 14)
    ADHERENCE_SELF_REPORT_AGREE = _env_float("ADHERENCE_SELF_REPORT_AGREE", 0.95)
    ADHERENCE_EARLY_REFILL_FRACTION = _env_float("ADHERENCE_EARLY_REFILL_FRACTION", 0.20)
    ADHERENCE_LATE_REFILL_GRACE_DAYS = _env_int("ADHERENCE_LATE_REFILL_GRACE_DAYS", 3)
    ADHERENCE_OVERSUPPLY_FACTOR = _env_float("ADHERENCE_OVERSUPPLY_FACTOR", 2.0)
    ADHERENCE_FIRST_ANSWER_LOOKBACK_DAYS = _env_int("ADHERENCE_FIRST_ANSWER_LOOKBACK_DAYS", 7)
    ADHERENCE_ALERT_COOLDOWN_DAYS = _env_int("ADHERENCE_ALERT_COOLDOWN_DAYS", 14)
    ADHERENCE_BATCH_SIZE = _env_int("ADHERENCE_BATCH_SIZE", 5000)
    ADHERENCE_PG_WORK_MEM = _env("ADHERENCE_PG_WORK_MEM", "64MB")  # for the nightly job's aggregates
    DEMO_TOOLS = False
    # Polled endpoints that must not keep an idle session alive.
    PASSIVE_ENDPOINTS = ("triage.counts",)

    @classmethod
    def validate(cls, config: dict) -> None:
        """Refuse unsafe settings; subclasses add their own checks."""


class DevelopmentConfig(BaseConfig):
    ENV_NAME = "development"
    DEBUG = False
    SECRET_KEY = _env("SECRET_KEY", "dev-only-insecure-key-never-use-in-production")
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", False)
    SESSION_IDLE_MINUTES = _env_int("SESSION_IDLE_MINUTES", 60)
    OUTBOX_RATE_PER_SECOND = _env_float("OUTBOX_RATE_PER_SECOND", 20.0)
    DEMO_TOOLS = True


class TestingConfig(BaseConfig):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-key-" + "x" * 40
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    SESSION_COOKIE_SECURE = False
    LOGIN_MAX_FAILURES = 5
    DEMO_TOOLS = True
    SERVER_NAME = None


class ProductionConfig(BaseConfig):
    ENV_NAME = "production"

    @classmethod
    def validate(cls, config: dict) -> None:
        key = config.get("SECRET_KEY") or ""
        if len(key) < 32 or len(set(key)) < 10 or "insecure" in key or "dev" in key.lower()[:4]:
            raise ConfigError(
                "ONCOLINK_SECRET_KEY must be set to a random value of at least 32 characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        uri = config.get("SQLALCHEMY_DATABASE_URI", "")
        if uri.startswith("sqlite") and not _env_bool("ALLOW_SQLITE", False):
            raise ConfigError("production runs on PostgreSQL: set ONCOLINK_DATABASE_URL")
        if config.get("SMS_PROVIDER") == "twilio":
            missing = [k for k in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not config.get(k)]
            if missing:
                raise ConfigError("missing provider credentials: " + ", ".join(missing))
            if not config.get("TWILIO_FROM_NUMBER") and not config.get("TWILIO_MESSAGING_SERVICE_SID"):
                raise ConfigError("set ONCOLINK_TWILIO_FROM_NUMBER or ONCOLINK_TWILIO_MESSAGING_SERVICE_SID")
        elif config.get("SMS_PROVIDER") == "console":
            raise ConfigError("the console SMS provider is for development: set ONCOLINK_SMS_PROVIDER")


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def get_config(name: str | None = None):
    name = name or _env("ENV", "production")
    try:
        return CONFIGS[name]
    except KeyError:
        raise ConfigError(f"unknown ONCOLINK_ENV {name!r}; choose one of {sorted(CONFIGS)}") from None
