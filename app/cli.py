"""Operator commands: demo data, catalogue, accounts. Run with ``flask --app wsgi <command>``."""
from __future__ import annotations

import os
from pathlib import Path

import click
from flask import Flask, current_app

from app.core.db import unit_of_work


def init_commands(app: Flask) -> None:
    app.cli.add_command(seed_catalogue_cmd)
    app.cli.add_command(seed_demo_cmd)
    app.cli.add_command(create_admin_cmd)
    from app.jobs.cli import jobs_cli, scheduler_cli

    app.cli.add_command(scheduler_cli)
    app.cli.add_command(jobs_cli)
    from app.notifications.cli import outbox_cli, spool_cli

    app.cli.add_command(outbox_cli)
    app.cli.add_command(spool_cli)
    from app.monitoring.cli import health_cli

    app.cli.add_command(health_cli)
    app.cli.add_command(demo_cmd)


@click.command("seed-catalogue")
def seed_catalogue_cmd():
    """Add the default drug catalogue (idempotent)."""
    from app.pathways.catalogue import seed_catalogue

    with unit_of_work():
        added = seed_catalogue()
    click.echo(f"drug catalogue: {added} added")


def print_logins(logins) -> None:
    from app.demo import DEMO_PASSWORD

    click.echo("")
    click.echo("Demo logins (password for all: %s)" % DEMO_PASSWORD)
    for login in logins:
        click.echo(f"  {login.role:<22} {login.email:<38} {login.where}")
    click.echo("")


@click.command("seed-demo")
@click.option("--patients", default=40, show_default=True)
@click.option("--if-empty", is_flag=True, help="Do nothing (and succeed) when accounts exist already.")
def seed_demo_cmd(patients: int, if_empty: bool):
    """Fill an empty database with synthetic demo data (never in production)."""
    from app.demo import seed_demo

    from app.demo import DemoRefused

    if current_app.config["ENV_NAME"] == "production":
        raise click.ClickException("demo data is refused in production")
    try:
        with unit_of_work():
            logins = seed_demo(patients)
    except DemoRefused as exc:
        raise click.ClickException(str(exc)) from None
    except RuntimeError as exc:
        if if_empty:
            click.echo(f"demo data: skipped ({exc})")
            from app.demo import demo_logins

            print_logins(demo_logins())
            return
        raise click.ClickException(str(exc)) from None
    print_logins(logins)


@click.command("create-admin")
@click.option("--email", required=True)
@click.option("--first-name", default="Admin")
@click.option("--last-name", default="Onco'Link")
def create_admin_cmd(email: str, first_name: str, last_name: str):
    """Create an administrator; the password comes from ONCOLINK_ADMIN_PASSWORD or a prompt."""
    from app.auth.services import PasswordPolicyError, hash_password
    from app.care.models import Professional
    from app.core.roles import Role
    from app.extensions import db

    password = os.environ.get("ONCOLINK_ADMIN_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    try:
        hashed = hash_password(password)
    except PasswordPolicyError as exc:
        raise click.ClickException(f"password refused: {exc}") from None
    with unit_of_work():
        if db.session.query(Professional).filter(db.func.lower(Professional.email) == email.lower()).first():
            raise click.ClickException("an account with this e-mail exists already")
        db.session.add(Professional(email=email, password_hash=hashed, first_name=first_name,
                                    last_name=last_name, role=Role.ADMIN))
    click.echo(f"administrator {email} created")


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-scheduler", is_flag=True, help="Serve the pages only.")
@click.option("--database", "database_url", metavar="URL", default=None,
              help="Run on this database instead of instance/demo.db; refused unless it is empty or "
                   "was made by the demo.")
def demo_cmd(host: str, port: int, no_scheduler: bool, database_url: str | None):
    """Development only: migrate, seed demo data, then serve web + scheduler in one process.

    Runs on its own database, instance/demo.db, whatever ONCOLINK_DATABASE_URL says, with the
    console SMS provider whatever ONCOLINK_SMS_PROVIDER says."""
    from app import create_app
    from app.demo import DemoRefused, check_demo_database, demo_database_url, mark_demo_database

    if current_app.config["ENV_NAME"] != "development":
        raise click.ClickException("the demo runs with ONCOLINK_ENV=development only")
    url = database_url or demo_database_url(current_app.instance_path)
    if database_url is None and os.environ.get("ONCOLINK_DATABASE_URL"):
        click.echo("ONCOLINK_DATABASE_URL is set in this environment: the demo ignores it and runs on its "
                   f"own database, {url.removeprefix('sqlite:///')} (--database URL names another one).")
    if os.environ.get("ONCOLINK_SMS_PROVIDER", "console") != "console":
        click.echo("ONCOLINK_SMS_PROVIDER is set in this environment: the demo ignores it and prints "
                   "its text messages here.")
    try:
        check_demo_database(url)
    except DemoRefused as exc:
        raise click.ClickException(str(exc)) from None
    Path(current_app.instance_path).mkdir(parents=True, exist_ok=True)
    mark_demo_database(url)
    app = create_app("development", {"SQLALCHEMY_DATABASE_URI": url, "SMS_PROVIDER": "console"})
    with app.app_context():
        _serve_demo(app, host, port, no_scheduler)


def _serve_demo(app: Flask, host: str, port: int, no_scheduler: bool) -> None:
    from flask_migrate import upgrade
    from werkzeug.serving import run_simple

    from app.demo import demo_logins, seed_demo
    from app.extensions import db
    from app.pathways.catalogue import seed_catalogue

    upgrade()
    with unit_of_work():
        seed_catalogue()
    try:
        with unit_of_work():
            logins = seed_demo()
    except RuntimeError:
        logins = demo_logins()
    db.session.remove()  # end the CLI's transaction: on SQLite it would hold the write lock
    scheduler = None
    if not no_scheduler:
        from app.jobs.scheduler import start_in_background

        scheduler = start_in_background(app)
    print_logins(logins)
    click.echo(f"Onco'Link demo: http://{host}:{port}/  (text messages are printed here; "
               f"patient phone simulator: http://{host}:{port}/dev/phone)")
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
