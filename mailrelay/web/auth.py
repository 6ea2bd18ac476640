"""Who gets in (being built): install(app) guards every page but the login and the health endpoint."""
from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("auth", __name__)


def install(app: Flask) -> None:
    app.register_blueprint(bp)
