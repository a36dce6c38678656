"""Application factory: wires settings, extensions, blueprints, hooks and commands. Nothing else."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from config import get_config


def create_app(config_name: str | None = None, overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    config = get_config(config_name)
    app.config.from_object(config)
    if overrides:
        app.config.update(overrides)
    config.validate(app.config)

    register_extensions(app)
    register_blueprints(app)
    register_hooks(app)
    register_errorhandlers(app)
    register_commands(app)
    register_template_helpers(app)
    if app.config.get("PROXY_FIX"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    logging.getLogger("oncolink").setLevel(app.config.get("LOG_LEVEL", "INFO"))
    return app


def register_extensions(app: Flask) -> None:
    from app import models  # noqa: F401  (every model registered on the metadata)
    from app.extensions import babel, csrf, db, login_manager, migrate
    from app.web.i18n import select_locale

    _database_timeouts(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.config.get("MIGRATIONS_DIR") or _migrations_dir()))
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"  # phones change network mid-session
    from app.auth.views import load_user

    login_manager.user_loader(load_user)


def _database_timeouts(app: Flask) -> None:
    """PostgreSQL: give up connecting, or on a connection whose server stopped acknowledging,
    after ``DATABASE_CONNECT_TIMEOUT_SECONDS`` instead of minutes, so a lost database host makes
    the webhooks spool their requests within Twilio's 15 s rather than time out (issue 18)."""
    seconds = app.config.get("DATABASE_CONNECT_TIMEOUT_SECONDS")
    if not seconds or not str(app.config.get("SQLALCHEMY_DATABASE_URI", "")).startswith("postgresql"):
        return
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    connect_args = dict(options.get("connect_args") or {})
    connect_args.setdefault("connect_timeout", max(1, round(seconds)))
    connect_args.setdefault("tcp_user_timeout", int(seconds * 1000))
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**options, "connect_args": connect_args}


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


def register_blueprints(app: Flask) -> None:
    from app.adherence.views import bp as adherence_bp
    from app.admin.views import bp as admin_bp
    from app.api import bp as api_bp
    from app.auth.views import bp as auth_bp
    from app.community.views import bp as community_bp
    from app.jobs.views import bp as jobs_admin_bp
    from app.notifications.webhooks import bp as webhooks_bp
    from app.reports.views import bp as reports_bp
    from app.triage.oncall_views import bp as oncall_admin_bp
    from app.triage.paging_views import bp as paging_bp
    from app.admin.rules_views import bp as rules_bp
    from app.triage.views import bp as triage_bp
    from app.web.health import bp as health_bp
    from app.web.views import bp as web_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(web_bp)
    app.register_blueprint(triage_bp)
    app.register_blueprint(adherence_bp)  # dispensings, adherence reports, the patient page's section
    app.register_blueprint(community_bp)  # community portal: interviews, reconciliation, visits
    app.register_blueprint(rules_bp, url_prefix="/admin/rules")
    app.register_blueprint(oncall_admin_bp, url_prefix="/admin/oncall")
    app.register_blueprint(paging_bp)  # /a/<token>: acknowledgement link of a page, no sign-in
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(jobs_admin_bp, url_prefix="/admin/jobs")
    app.register_blueprint(reports_bp)  # /reports/statements, /reports/indicators, /admin/tariffs
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    app.register_blueprint(webhooks_bp)  # /webhooks/twilio/..., CSRF-exempt, signature-checked
    app.register_blueprint(health_bp)  # /healthz for external monitoring: no sign-in, no patient data
    from app.monitoring.views import bp as monitoring_bp

    app.register_blueprint(monitoring_bp)  # /admin/platform/, and the TwiML of a fault report by call
    register_checkins(app)
    register_signals(app)
    if app.config.get("DEMO_TOOLS"):
        from app.devtools.views import bp as devphone_bp

        app.register_blueprint(devphone_bp, url_prefix="/dev/phone")


def register_checkins(app: Flask) -> None:
    """The check-in engine: voice TwiML views and the owner of inbound SMS conversations."""
    from app.notifications.inbound import register_sms_handler, register_sms_screen
    from app.pathways.checkins.conversation import screen_inbound_sms
    from app.pathways.checkins.voice import bp as checkin_voice_bp
    from app.routing import route_inbound_sms

    app.register_blueprint(checkin_voice_bp)  # /webhooks/twilio/voice/<id>/<signed token>/...
    from app.pathways.checkins.queries import non_responders
    from app.pathways.checkins.views import bp as checkin_pages_bp
    from app.triage import panels

    app.register_blueprint(checkin_pages_bp)  # pre-consultation summary, nurse's phone follow-up
    panels.register("non_responders", non_responders)  # shown on the triage queue
    register_sms_handler(route_inbound_sms)
    register_sms_screen(screen_inbound_sms)  # the webhook's emergency scan and TwiML safety reply
    from app.triage import subscribers as triage_subscribers

    triage_subscribers.connect()  # e.g. the provider's opt-out (21610) becomes a nurse's call


def register_signals(app: Flask) -> None:
    """Domains listening to the transport's signals (connected here, never by an import)."""
    from app.triage.escalation import connect_signals

    connect_signals()


def register_hooks(app: Flask) -> None:
    from app.web.hooks import init_hooks

    init_hooks(app)


def register_errorhandlers(app: Flask) -> None:
    from app.web.errors import init_errorhandlers

    init_errorhandlers(app)


def register_commands(app: Flask) -> None:
    from app.cli import init_commands

    init_commands(app)


def register_template_helpers(app: Flask) -> None:
    from app.web.filters import init_filters

    init_filters(app)
