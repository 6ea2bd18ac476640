"""Helpers for the console's tests: the app in test mode, a client logged in without the login form."""
from __future__ import annotations

import secrets
import time
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from mailrelay.web.app import create_app
from tests.helpers import REPO


def console_app(config: Path) -> Flask:
    """The console for the main config at `config`, with Flask's TESTING on (exceptions reach the test)."""
    app = create_app(Path(config))
    app.config.update(TESTING=True)
    return app


def logged_in(client: FlaskClient, name: str = "anna") -> str:
    """Give `client` a session for editor `name`, active now; returns its CSRF token (field `csrf_token`)."""
    token = secrets.token_urlsafe(32)
    with client.session_transaction() as session:
        session.clear()
        session.permanent = True
        session["editor"] = name
        session["csrf"] = token
        session["seen"] = time.time()
    return token


def web_config(directory: Path, extra_web: str = "") -> Path:
    """A main config in `directory` without mail servers: a Maildir source `md`, an outbox `ob`, the SQLite
    state `state.sqlite`, and [web] users/secret files there (`extra_web`: further [web] lines)."""
    (directory / "md").mkdir(exist_ok=True)
    (directory / "ob").mkdir(exist_ok=True)
    config = directory / "mailrelay.toml"
    config.write_text(
        f'rules = "{REPO / "config" / "routing.toml"}"\nsignals = "{REPO / "config" / "signals.toml"}"\n'
        f'templates = "{REPO / "templates"}"\n'
        '[maildir]\npath = "md"\n[outbox]\npath = "ob"\n[relay]\nfrom_address = "r@example.de"\n'
        '[state]\npath = "state.sqlite"\n'
        f'[web]\nusers_file = "web-users"\nsecret_file = "web-secret"\n{extra_web}', encoding="utf-8")
    return config
