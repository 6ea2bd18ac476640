"""The Flask application: settings, the signing key, the stores per request, the pages' blueprints."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import Flask, g, current_app

from mailrelay.config import Settings, load_settings
from mailrelay.state import Store, open_state
from mailrelay.web.config import WebSettings, web_settings

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Console:
    """What every page needs: the main config's path and settings, and the console's own."""

    config: Path
    settings: Settings
    web: WebSettings


def create_app(config: Path) -> Flask:
    settings, web = load_settings(config), web_settings(config)
    app = Flask("mailrelay.web", template_folder=str(TEMPLATES), static_folder=None)
    app.config.update(
        SECRET_KEY=signing_key(web.secret_file),
        SESSION_COOKIE_NAME="mailrelay_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=web.behind_proxy,  # behind the TLS proxy the browser sees https only
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=web.idle_minutes),
        SESSION_REFRESH_EACH_REQUEST=True,
        MAX_CONTENT_LENGTH=web.max_upload_kb * 1024,
    )
    app.extensions["mailrelay"] = Console(config, settings, web)
    if web.behind_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    from mailrelay.web import auth, history, overview, queues, trial

    auth.install(app)
    for module in (overview, history, queues, trial):
        app.register_blueprint(module.bp)
    app.teardown_appcontext(_close_stores)
    return app


def console() -> Console:
    return current_app.extensions["mailrelay"]


def reader() -> Store:
    """The state, read-only, for this request (beside the running service, no lock)."""
    if "reader" not in g:
        g.reader = open_state(console().settings, read_only=True)
    return g.reader


def writer() -> Store:
    """The state for an editor's request (release, drop): recorded there, carried out by the next poll."""
    if "writer" not in g:
        g.writer = open_state(console().settings)
    return g.writer


def _close_stores(error: BaseException | None) -> None:
    for name in ("reader", "writer"):
        store = g.pop(name, None)
        if store is not None:
            store.close()


def signing_key(path: Path) -> bytes:
    """The key that signs the session cookies: read from `path`, made there (mode 0600) on first start.
    A new key ends every session, which is what deleting the file is for."""
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(key.hex() + "\n")
    return key
