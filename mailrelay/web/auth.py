"""Who gets in: the login, the guard before every page, CSRF, idle expiry, the login brake, security headers."""
from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
)
from markupsafe import Markup, escape

from mailrelay.logs import get_logger
from mailrelay.web.users import load_users

bp = Blueprint("auth", __name__)

PUBLIC = frozenset({"auth.login", "auth.health"})
SAFE_METHODS = frozenset({"GET", "HEAD"})
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))  # an unknown name costs the same verify as a known one


def install(app: Flask) -> None:
    """The blueprint, the guard before every request, the template globals and the headers after."""
    app.register_blueprint(bp)
    app.extensions["mailrelay.logins"] = LoginBrake()
    app.before_request(_guard)
    app.context_processor(lambda: {"editor": g.get("editor"), "csrf_field": csrf_field})
    app.after_request(_security_headers)


# The login brake: failures per name and per address, in memory (one process; a restart forgets).

@dataclass
class LoginBrake:
    """After `slow_after` failures within `window` seconds each attempt waits base_delay·2^n (at most
    `max_delay`); from `refuse_after` on it is refused until the oldest counted failure is out of the window."""

    window: float = 15 * 60
    slow_after: int = 5
    refuse_after: int = 10
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_waiting: int = 2  # attempts asleep at once; more are refused, so the brake cannot take every thread
    max_keys: int = 10_000
    sleep: object = time.sleep
    _failures: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _waiting: threading.BoundedSemaphore = None

    def __post_init__(self) -> None:
        self._waiting = threading.BoundedSemaphore(self.max_waiting)

    def verdict(self, keys: tuple[str, ...], now: float) -> tuple[str, float]:
        """("go", 0), ("wait", seconds) or ("refuse", seconds until the next attempt is heard)."""
        with self._lock:
            counted = [self._recent(key, now) for key in keys]
        worst = max(counted, key=len)
        if len(worst) >= self.refuse_after:
            return "refuse", max(1.0, worst[-self.refuse_after] + self.window - now)
        if len(worst) >= self.slow_after:
            return "wait", min(self.max_delay, self.base_delay * 2 ** (len(worst) - self.slow_after))
        return "go", 0.0

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds`; False (at once) when enough attempts are asleep already."""
        if not self._waiting.acquire(blocking=False):
            return False
        try:
            self.sleep(seconds)
        finally:
            self._waiting.release()
        return True

    def failed(self, keys: tuple[str, ...], now: float) -> None:
        with self._lock:
            if len(self._failures) >= self.max_keys:
                self._forget_stale(now)
            for key in keys:
                self._failures.setdefault(key, deque(maxlen=self.refuse_after)).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> list[float]:
        return [at for at in self._failures.get(key, ()) if now - at < self.window]

    def _forget_stale(self, now: float) -> None:
        for key in [key for key, times in self._failures.items() if not self._recent(key, now)]:
            del self._failures[key]
        while len(self._failures) >= self.max_keys:  # a flood of fresh names: the oldest entries go first
            del self._failures[next(iter(self._failures))]


def brake() -> LoginBrake:
    return current_app.extensions["mailrelay.logins"]


# The guard

def _guard() -> Response | None:
    """Before every request: who is logged in; everything but the public pages needs a fresh session,
    and every state-changing request its CSRF token."""
    g.editor = _session_editor()
    if request.endpoint in PUBLIC:
        return None
    if g.editor is None:
        return _deny()
    session["seen"] = time.time()
    if request.method not in SAFE_METHODS and not csrf_ok():
        get_logger().warning("web.csrf_refused", editor=g.editor, path=request.path)
        return Response("Das Formular ist ungültig oder veraltet (CSRF-Token fehlt). Bitte die Seite neu laden.",
                        400, mimetype="text/plain")
    return None


def _session_editor() -> str | None:
    """The editor of a session used within the idle time; an idle session is cleared, with a note."""
    editor, seen = session.get("editor"), session.get("seen")
    if not editor:
        return None
    idle = console_idle_seconds()
    now = time.time()
    if not isinstance(seen, (int, float)) or not now - idle < seen <= now + 60:
        session.clear()
        flash(f"Ihre Sitzung ist nach {idle / 60:g} Minuten ohne Aktivität abgelaufen. Bitte melden Sie sich neu an.")
        return None
    return editor


def console_idle_seconds() -> float:
    return current_app.extensions["mailrelay"].web.idle_minutes * 60


def _deny() -> Response:
    """No session: a page is sent to the login (and back afterwards), anything else refused."""
    if request.method in SAFE_METHODS:
        return redirect(f"/login?next={quote(request.full_path.rstrip('?'), safe='/')}")
    return Response(render_template("login.html", refused=True, next_path="/"), 403)


def local_path(target: str | None) -> str:
    """`target` if it is a path on this site, else "/": the login never sends anyone elsewhere."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ord(char) < 32 or char == "\\" for char in target):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


# CSRF

def csrf_token() -> str:
    """This session's token, made when first needed (before a login too, for the login form)."""
    if not isinstance(session.get("csrf"), str):
        session.permanent = True
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_field() -> Markup:
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(escape(csrf_token()))


def csrf_ok() -> bool:
    sent, expected = request.form.get("csrf_token", ""), session.get("csrf")
    return isinstance(expected, str) and hmac.compare_digest(sent.encode(), expected.encode())


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.vary.add("Cookie")
    return response


# The pages

@bp.route("/login", methods=["GET", "POST"])
def login():
    target = local_path(request.values.get("next"))
    if request.method == "GET":
        if g.editor:
            return redirect(target)
        return render_template("login.html", next_path=target)
    if not csrf_ok():
        flash("Das Anmeldeformular war abgelaufen. Bitte noch einmal anmelden.")
        return render_template("login.html", next_path=target), 400
    return _attempt(request.form.get("username", "").strip()[:64], request.form.get("password", ""), target)


def _attempt(name: str, password: str, target: str):
    address = request.remote_addr or "unknown"
    keys = (f"name:{name.casefold()}", f"address:{address}")
    verdict, seconds = brake().verdict(keys, time.time())
    if verdict == "refuse" or (verdict == "wait" and not brake().wait(seconds)):
        return _refused(name, address, seconds if verdict == "refuse" else brake().window)
    users = load_users(current_app.extensions["mailrelay"].web.users_file)
    if not _verify(users.get(name), password):
        brake().failed(keys, time.time())
        _record("web.login_failed", name, address, warning=True)
        return render_template("login.html", next_path=target, username=name,
                               error="Name oder Passwort stimmt nicht."), 401
    brake().succeeded(keys[0])
    _rehash_if_needed(name, users[name], password)
    session.clear()  # a new session: nothing from before the login carries over
    session.permanent = True
    session.update(editor=name, csrf=secrets.token_urlsafe(32), seen=time.time())
    _record("web.login", name, address)
    return redirect(target)


def _verify(digest: str | None, password: str) -> bool:
    """argon2 verification; an unknown name is checked against a dummy hash, so it takes as long."""
    try:
        return _HASHER.verify(digest or _DUMMY_HASH, password) and digest is not None
    except (VerificationError, InvalidHashError):
        return False


def _rehash_if_needed(name: str, digest: str, password: str) -> None:
    """A hash made with weaker parameters than today's is replaced, now that the password is at hand."""
    if not _HASHER.check_needs_rehash(digest):
        return
    from mailrelay.web.users import set_password

    try:
        set_password(current_app.extensions["mailrelay"].web.users_file, name, password, _HASHER)
    except OSError as error:
        get_logger().warning("web.rehash_failed", name=name, error=str(error))


def _refused(name: str, address: str, seconds: float):
    get_logger().warning("web.login_refused", name=name, address=address)
    minutes = max(1, round(seconds / 60))
    error = (f"Zu viele fehlgeschlagene Anmeldeversuche. Bitte in etwa {minutes} "
             f"Minute{'n' if minutes > 1 else ''} erneut versuchen.")
    response = Response(render_template("login.html", next_path="/", username=name, error=error), 429)
    response.headers["Retry-After"] = str(int(seconds) + 1)
    return response


def _record(event: str, name: str, address: str, warning: bool = False) -> None:
    """The log line and the audit record; the login page keeps working when the state cannot be written."""
    log = get_logger()
    (log.warning if warning else log.info)(event, name=name, address=address)
    from mailrelay.web.app import writer

    try:
        writer().event(None, event, {"name": name, "address": address})
    except Exception as error:  # noqa: BLE001 - any store failure; the login must answer all the same
        log.error("web.audit_failed", event_name=event, error=str(error))


@bp.route("/logout", methods=["POST"])
def logout():
    get_logger().info("web.logout", name=g.editor)
    session.clear()
    flash("Sie sind abgemeldet.")
    return redirect("/login")


@bp.route("/healthz")
def health():
    """For the proxy: can the state be read? No details."""
    from mailrelay.web.app import reader

    try:
        reader().audit_head()
    except Exception:  # noqa: BLE001 - whatever fails, the answer is the same word
        return Response("unavailable", 503, mimetype="text/plain")
    return Response("ok", 200, mimetype="text/plain")
