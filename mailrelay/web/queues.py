"""Pages: queues (being built)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("queues", __name__)
