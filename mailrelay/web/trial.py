"""Pages: trial (being built)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("trial", __name__)
