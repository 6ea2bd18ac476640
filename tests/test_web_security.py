"""The console's doors, without a browser: the guard, CSRF, the signed cookie, the login brake, idle expiry."""
from __future__ import annotations

import re
import stat
import time
from pathlib import Path

import pytest
from flask import g
from structlog.testing import capture_logs

from mailrelay.config import load_settings
from mailrelay.state import open_state
from mailrelay.web import auth, users
from tests.relaytest import audit_events
from tests.webtest import console_app, logged_in, web_config

PASSWORD = "Sonnenblume-17"
COOKIE = "mailrelay_session"
# The contract's URLs with their methods: tested even before (or if ever without) the page behind them.
CONTRACT_URLS = [("GET", "/"), ("GET", "/verlauf?sender=x"), ("GET", "/mail/1"), ("GET", "/pruefung"),
                 ("GET", "/quarantaene"), ("POST", "/quarantaene/1/freigeben"), ("POST", "/quarantaene/1/verwerfen"),
                 ("POST", "/pruefung/1/freigeben"), ("POST", "/pruefung/1/erledigt"), ("GET", "/regel"),
                 ("POST", "/regel"), ("GET", "/mail-pruefen"), ("POST", "/mail-pruefen"), ("POST", "/logout")]


def _folder(tmp_path: Path, extra_web: str = "") -> Path:
    config = web_config(tmp_path, extra_web)
    open_state(load_settings(config)).close()  # a real, empty state
    users.set_password(tmp_path / "web-users", "anna", PASSWORD)
    return config


def _with_probe(app):
    """A page of our own behind the guard (GET and POST), so these tests do not wait for the real pages."""
    app.add_url_rule("/probe", "probe", lambda: f"editor={g.editor}", methods=["GET", "POST"])
    return app


@pytest.fixture
def app(tmp_path):
    return _with_probe(console_app(_folder(tmp_path)))


@pytest.fixture
def client(app):
    return app.test_client()


def _login_form_token(client) -> str:
    page = client.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def _log_in(client, name="anna", password=PASSWORD, **extra):
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf_token": _login_form_token(client), **extra})


def _is_login_redirect(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def _urls(app) -> list[tuple[str, str]]:
    """Every URL the app serves, with each of its methods (an int argument filled with 1)."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in auth.PUBLIC or rule.endpoint == "static":
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = re.sub(rf"<(?:[^:<>]+:)?{argument}>", "1", path)
        found += [(method, path) for method in sorted(rule.methods & {"GET", "POST"})]
    return found


# The guard

def test_every_page_without_a_session_redirects_or_is_refused(app, client):
    """Without a session each GET is sent to the login (with the way back) and each POST refused with 403."""
    urls = sorted(set(_urls(app) + CONTRACT_URLS))
    assert ("GET", "/probe") in urls and ("POST", "/probe") in urls
    for method, path in urls:
        response = client.open(path, method=method, data={"csrf_token": "x"})
        if method == "GET":
            assert _is_login_redirect(response), path
            assert response.headers["Location"] == "/login?next=" + path.replace("?", "%3F").replace("=", "%3D")
        else:
            assert response.status_code == 403, path


def test_a_session_opens_the_pages(client):
    """With a fresh session the guard lets a page through and names the editor."""
    logged_in(client, "bernd")
    assert client.get("/probe").text == "editor=bernd"


def test_the_public_endpoints_need_no_session(client):
    """/login and /healthz answer without a session."""
    assert client.get("/login").status_code == 200
    assert client.get("/healthz").text == "ok"


def test_healthz_says_unavailable_without_a_readable_state(tmp_path):
    """When the state cannot be read the health endpoint answers 503, without details."""
    app = console_app(_folder(tmp_path))
    (tmp_path / "state.sqlite").unlink()
    response = app.test_client().get("/healthz")
    assert (response.status_code, response.text) == (503, "unavailable")


@pytest.mark.parametrize("target, expected", [("/verlauf?sender=a", "/verlauf?sender=a"), ("//evil.example/", "/"),
                                              ("https://evil.example/", "/"), ("/\\evil.example", "/"),
                                              ("evil", "/"), ("/\nx", "/"), (None, "/")])
def test_the_login_sends_back_to_local_paths_only(client, target, expected):
    """After the login the browser goes back to the page asked for, never to another site."""
    response = _log_in(client, **({"next": target} if target is not None else {}))
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_a_logged_in_editor_is_sent_on_from_the_login_page(client):
    """A fresh session visiting /login is sent where it wanted to go."""
    logged_in(client)
    assert client.get("/login?next=/probe").headers["Location"] == "/probe"


# CSRF

def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(app, client):
    """Every state-changing request without its session's token, or with another, is refused with 400."""
    token = logged_in(client)
    posts = sorted({path for method, path in _urls(app) + CONTRACT_URLS if method == "POST"})
    for path in posts:
        assert client.post(path).status_code == 400, path
        assert client.post(path, data={"csrf_token": token[:-1] + ("A" if token[-1] != "A" else "B")}).status_code == 400
        assert client.post(path, data={"csrf_token": ""}).status_code == 400, path
    assert client.post("/probe", data={"csrf_token": token}).text == "editor=anna"


def test_the_login_form_needs_its_token_too(client):
    """A login posted without the form's token (login CSRF) is refused, and the form offered again."""
    client.get("/login")
    response = client.post("/login", data={"username": "anna", "password": PASSWORD})
    assert response.status_code == 400
    assert "Das Anmeldeformular war abgelaufen" in response.text
    assert _is_login_redirect(client.get("/probe"))


def test_logout_ends_the_session(client):
    """After the logout (a POST with the token) the pages are closed again."""
    token = logged_in(client)
    assert _is_login_redirect(client.post("/logout", data={"csrf_token": token}))
    assert _is_login_redirect(client.get("/probe"))


# The cookie

def test_a_tampered_cookie_counts_as_no_session(client):
    """A session cookie with one byte changed, in its content or its signature, opens nothing."""
    assert _log_in(client).status_code == 302
    cookie = client.get_cookie(COOKIE).value
    assert client.get("/probe").text == "editor=anna"
    payload_end = cookie.index(".")
    for position in (2, payload_end - 1, len(cookie) - 2):
        flipped = "A" if cookie[position] != "A" else "B"
        client.set_cookie(COOKIE, cookie[:position] + flipped + cookie[position + 1:])
        assert _is_login_redirect(client.get("/probe")), position
        assert client.post("/probe", data={"csrf_token": "x"}).status_code == 403


def _session_cookie_header(response) -> str:
    return next(value for value in response.headers.getlist("Set-Cookie") if value.startswith(COOKIE + "="))


def test_the_session_cookie_is_httponly_and_samesite_strict_but_not_secure_on_plain_http(client):
    """Served directly on loopback the cookie is HttpOnly and SameSite=Strict, without Secure (no TLS there)."""
    header = _session_cookie_header(_log_in(client))
    assert "HttpOnly" in header and "SameSite=Strict" in header
    assert "Secure" not in header


def test_behind_the_proxy_the_cookie_is_secure_and_the_address_is_the_clients(tmp_path):
    """With behind_proxy the cookie is Secure, and a failed login is recorded with the forwarded address."""
    app = console_app(_folder(tmp_path, "behind_proxy = true\n"))
    client = app.test_client()
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login", headers=proxied).text).group(1)
    failed = client.post("/login", headers=proxied, base_url="https://localhost",
                         data={"username": "anna", "password": "falsch", "csrf_token": token})
    assert failed.status_code == 401
    header = _session_cookie_header(failed)
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Strict" in header
    assert ("web.login_failed", {"name": "anna", "address": "203.0.113.7"}) in [
        (event, detail) for _, event, detail in audit_events(tmp_path)]


def test_the_login_makes_a_new_session(client):
    """Nothing from the session before the login survives it, and the CSRF token is new."""
    with client.session_transaction() as session:
        session.update(csrf="planted-token", planted="from before", editor="")
    response = client.post("/login", data={"username": "anna", "password": PASSWORD, "csrf_token": "planted-token"})
    assert response.status_code == 302
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["csrf"] != "planted-token" and len(session["csrf"]) >= 32
        assert session["editor"] == "anna" and time.time() - session["seen"] < 5


# Idle expiry

def test_an_idle_session_ends(app, client):
    """A session unused for longer than idle_minutes is cleared, and the login page says why."""
    idle = app.extensions["mailrelay"].web.idle_minutes * 60
    token = logged_in(client)
    with client.session_transaction() as session:
        session["seen"] = time.time() - idle + 30
    assert client.get("/probe").text == "editor=anna"
    with client.session_transaction() as session:
        session["seen"] = time.time() - idle - 1
    assert _is_login_redirect(client.get("/probe"))
    assert "abgelaufen" in client.get("/login").text
    with client.session_transaction() as session:
        assert "editor" not in session
    assert client.post("/probe", data={"csrf_token": token}).status_code == 403


def test_each_request_renews_the_idle_time(client):
    """A page seen resets the idle clock."""
    logged_in(client)
    with client.session_transaction() as session:
        session["seen"] = time.time() - 60
    client.get("/probe")
    with client.session_transaction() as session:
        assert time.time() - session["seen"] < 5


# Failed logins

def _attempt_seconds(client, name="anna", password="falsch", address="192.0.2.1") -> tuple[int, float]:
    token = _login_form_token(client)
    started = time.monotonic()
    response = client.post("/login", environ_base={"REMOTE_ADDR": address},
                           data={"username": name, "password": password, "csrf_token": token})
    return response.status_code, time.monotonic() - started


def test_ten_wrong_passwords_in_a_row_are_slowed_down_then_refused(app, client):
    """After five failures each attempt waits longer (doubling); after ten even the right password is
    refused with 429; every failure is logged and recorded in the audit trail."""
    unit = 0.1
    app.extensions["mailrelay.logins"].base_delay = unit
    with capture_logs() as logs:
        answers = [_attempt_seconds(client) for _ in range(10)]
    assert [status for status, _ in answers] == [401] * 10
    fast = max(seconds for _, seconds in answers[:5])
    for number, (_, seconds) in enumerate(answers[5:]):
        assert seconds >= unit * 2 ** number, (number, seconds)
    assert answers[9][1] > fast + unit * 8
    refused = client.post("/login", environ_base={"REMOTE_ADDR": "192.0.2.1"},
                          data={"username": "anna", "password": PASSWORD, "csrf_token": _login_form_token(client)})
    assert refused.status_code == 429 and "Zu viele fehlgeschlagene Anmeldeversuche" in refused.text
    assert int(refused.headers["Retry-After"]) > 60
    assert _is_login_redirect(client.get("/probe"))
    failed = [entry for entry in logs if entry["event"] == "web.login_failed"]
    assert len(failed) == 10 and all(entry["log_level"] == "warning" for entry in failed)
    recorded = [detail for _, event, detail in audit_events(app.extensions["mailrelay"].config.parent)
                if event == "web.login_failed"]
    assert recorded == [{"name": "anna", "address": "192.0.2.1"}] * 10


def test_the_brake_counts_per_address_and_per_name(app, client):
    """Many names from one address, or one name from many addresses, are braked alike."""
    brake = app.extensions["mailrelay.logins"]
    slept = []
    brake.sleep = slept.append
    for number in range(6):
        _attempt_seconds(client, name=f"guess{number}", address="192.0.2.9")
    assert slept == [1.0]
    for number in range(6):
        _attempt_seconds(client, name="bernd", address=f"198.51.100.{number}")
    assert slept == [1.0, 1.0]
    assert _attempt_seconds(client, name="anna", password=PASSWORD, address="198.51.100.77")[0] == 302


def test_the_delay_is_capped_and_few_attempts_sleep_at_once(app):
    """The wait doubles up to max_delay; while max_waiting attempts sleep, another is turned away at once."""
    brake = auth.LoginBrake(slow_after=1, refuse_after=100, max_waiting=0)
    for _ in range(12):
        brake.failed(("name:x",), 1000.0)
    assert brake.verdict(("name:x", "address:y"), 1000.0) == ("wait", 30.0)
    assert brake.wait(5) is False
    assert brake.verdict(("name:x",), 1000.0 + brake.window) == ("go", 0.0)


def test_a_successful_login_clears_the_names_failures(app, client):
    """Mistyping a few times and then getting in leaves no brake on the name."""
    for _ in range(4):
        _attempt_seconds(client)
    assert _attempt_seconds(client, password=PASSWORD)[0] == 302
    assert app.extensions["mailrelay.logins"].verdict(("name:anna",), time.time()) == ("go", 0.0)


def test_an_unknown_name_costs_a_password_check_too(client):
    """An unknown name is refused like a wrong password, after as much work (no shortcut tells names apart)."""
    def median(name):
        return sorted(_attempt_seconds(client, name=name, address=f"192.0.2.{n}")[1] for n in range(3))[1]

    known, unknown = median("anna"), median("niemand")
    assert unknown > known / 3, (known, unknown)
    assert _attempt_seconds(client, name="niemand", address="192.0.2.50")[0] == 401


def test_a_state_that_cannot_be_written_does_not_break_the_login(client, monkeypatch):
    """When the audit record cannot be written the login page still answers, and the log says so."""
    def broken():
        raise OSError("disk full")

    monkeypatch.setattr("mailrelay.web.app.writer", broken)
    with capture_logs() as logs:
        assert _attempt_seconds(client)[0] == 401
        assert _log_in(client).status_code == 302
    assert [entry["event_name"] for entry in logs if entry["event"] == "web.audit_failed"] == \
           ["web.login_failed", "web.login"]


def test_a_successful_login_is_recorded(app, client):
    """web.login with the name and the address."""
    _log_in(client)
    assert ("web.login", {"name": "anna", "address": "127.0.0.1"}) in [
        (event, detail) for _, event, detail in audit_events(app.extensions["mailrelay"].config.parent)]


# Headers

def test_every_response_carries_the_security_headers(client):
    """CSP, nosniff, no referrer and no caching on pages, redirects and the health endpoint alike."""
    for response in (client.get("/login"), client.get("/probe"), client.get("/healthz")):
        for name, value in auth.SECURITY_HEADERS.items():
            assert response.headers[name] == value, name
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


# The users file

def test_adduser_writes_an_argon2_hash_readable_by_the_owner_only(tmp_path, monkeypatch, capsys):
    """`adduser --password-stdin` stores name:hash (never the password), mode 0600; again: a new hash."""
    config = web_config(tmp_path)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("ein-langes-Passwort\n"))
    assert users.adduser(config, "lena.k", True) == 0
    path = tmp_path / "web-users"
    text = path.read_text()
    assert re.fullmatch(r"lena\.k:\$argon2id\$[^\n]+\n", text) and "ein-langes-Passwort" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "angelegt" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("ein-anderes-Passwort\n"))
    assert users.adduser(config, "lena.k", True) == 0
    assert "neues Passwort" in capsys.readouterr().out
    assert list(users.load_users(path)) == ["lena.k"] and path.read_text() != text


@pytest.mark.parametrize("name", ["anna:x", "an na", "jürgen", "", "a" * 65, "../etc"])
def test_adduser_refuses_names_outside_letters_digits_dot_underscore_dash(tmp_path, name, capsys):
    """A name with other characters is refused in German, and nothing is written."""
    assert users.adduser(web_config(tmp_path), name, True) == 2
    assert "nur Buchstaben" in capsys.readouterr().err
    assert not (tmp_path / "web-users").exists()


def test_adduser_asks_twice_and_refuses_differing_or_short_passwords(tmp_path, monkeypatch, capsys):
    """Without --password-stdin the password is asked twice; differing entries or a short one change nothing."""
    config = web_config(tmp_path)
    answers = iter(["ein-langes-Passwort", "ein-anderes-Passwort", "kurz", "kurz", "richtig-lang-1", "richtig-lang-1"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert users.adduser(config, "anna", False) == 1
    assert "stimmen nicht überein" in capsys.readouterr().err
    assert users.adduser(config, "anna", False) == 1
    assert "zu kurz" in capsys.readouterr().err
    assert not (tmp_path / "web-users").exists()
    assert users.adduser(config, "anna", False) == 0
    assert list(users.load_users(tmp_path / "web-users")) == ["anna"]


def test_adduser_as_root_leaves_the_file_to_the_owner_of_its_folder(tmp_path, monkeypatch):
    """Root adds editors; the console (another user, owning the folder) must still read the file."""
    import os
    import pwd

    if os.geteuid() != 0:
        pytest.skip("only root can hand a file to another user")
    nobody = pwd.getpwnam("nobody")
    folder = tmp_path / "console"
    folder.mkdir()
    os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    users.save_users(folder / "users", {"anna": "$argon2id$x"})
    written = (folder / "users").stat()
    assert (written.st_uid, written.st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert stat.S_IMODE(written.st_mode) == 0o600


def test_check_names_the_mistakes_of_the_web_table(tmp_path, capsys):
    """`mailrelay check` reads [web] as the console does: a misspelt key and a public address, each at its line."""
    from mailrelay.cli import main

    config = web_config(tmp_path, 'listen = "0.0.0.0:8025"\nidle_minuts = 3')
    assert main(["--config", str(config), "check"]) == 2
    err = capsys.readouterr().err
    assert "idle_minuts" in err and "0.0.0.0" in err
