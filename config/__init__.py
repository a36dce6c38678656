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


class ConfigError(RuntimeError):
    """Raised when the settings are unsafe or incomplete for the environment."""


class BaseConfig:
    ENV_NAME = "base"
    SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL", f"sqlite:///{ROOT / 'instance' / 'oncolink.db'}")
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
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
    HOSPITAL_PHONE_DEFAULT = _env("HOSPITAL_PHONE_DEFAULT", "+33100000000")
    DEMO_TOOLS = False

    @classmethod
    def validate(cls, config: dict) -> None:
        """Refuse unsafe settings; subclasses add their own checks."""


class DevelopmentConfig(BaseConfig):
    ENV_NAME = "development"
    DEBUG = False
    SECRET_KEY = _env("SECRET_KEY", "dev-only-insecure-key-never-use-in-production")
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", False)
    SESSION_IDLE_MINUTES = _env_int("SESSION_IDLE_MINUTES", 60)
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
