"""Operator commands: demo data, catalogue, accounts. Run with ``flask --app wsgi <command>``."""
from __future__ import annotations

import os

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

    if current_app.config["ENV_NAME"] == "production":
        raise click.ClickException("demo data is refused in production")
    try:
        with unit_of_work():
            logins = seed_demo(patients)
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
def demo_cmd(host: str, port: int, no_scheduler: bool):
    """Development only: migrate, seed demo data, then serve web + scheduler in one process."""
    from flask_migrate import upgrade
    from werkzeug.serving import run_simple

    app = current_app._get_current_object()
    if app.config["ENV_NAME"] != "development":
        raise click.ClickException("the demo runs with ONCOLINK_ENV=development only")
    upgrade()
    from app.demo import demo_logins, seed_demo

    from app.pathways.catalogue import seed_catalogue

    with unit_of_work():
        seed_catalogue()
    try:
        with unit_of_work():
            logins = seed_demo()
    except RuntimeError:
        logins = demo_logins()
    from app.extensions import db

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
