"""Running the relay against the test servers: a config writer and a `once` runner."""
from __future__ import annotations

import contextlib
import json
import sqlite3
import tomllib
from pathlib import Path

from mailrelay.cli import main
from mailrelay.state import Store, open_store
from tests.helpers import REPO

RELAY_ADDRESS = "relay@clusterplattform.example"
STATE_FILE = "state.sqlite"  # the SQLite state of a test's config, in its folder
STATE_SECRET = "state.secret"  # the PostgreSQL password of a test's config, in its folder


def write_config(directory: Path, dovecot, user: str, sink=None, *, smtp: str | None = None,
                 imap_port: int | None = None, templates: Path | None = None, rules: Path | None = None,
                 schedule: str = "retry_min_seconds = 0", state_url: str | None = None) -> Path:
    """A main config pointing at the test Dovecot (TLS, verified) and the SMTP sink (plain, loopback);
    by default a deferred mail is due again at once, so a test's next poll retries it. The state is the
    SQLite file state.sqlite, or with `state_url` that PostgreSQL database (its password into a file)."""
    (directory / "imap.secret").write_text(dovecot.password + "\n", encoding="utf-8")
    (directory / "imap.secret").chmod(0o600)
    smtp = smtp or f'[smtp]\nhost = "127.0.0.1"\nport = {sink.port}\nsecurity = "plain"\ntimeout = 10\n'
    text = f"""\
rules = "{rules or REPO / 'config' / 'routing.toml'}"
signals = "{REPO / 'config' / 'signals.toml'}"
templates = "{templates or REPO / 'templates'}"

[imap]
host = "127.0.0.1"
port = {imap_port or dovecot.tls_port}
security = "tls"
ca_file = "{dovecot.ca_file}"
username = "{user}"
password_file = "imap.secret"
timeout = 10

{smtp}
[relay]
from_address = "{RELAY_ADDRESS}"
id = "test-relay"

{_state_table(directory, state_url)}
[schedule]
{schedule}
"""
    path = directory / "mailrelay.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _state_table(directory: Path, state_url: str | None) -> str:
    """The [state] table: the file, or the database by a URL without its password, which goes to a file."""
    if state_url is None:
        return f'[state]\npath = "{STATE_FILE}"\n'
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(state_url)
    (directory / STATE_SECRET).write_text(parts.pop("password") + "\n", encoding="utf-8")
    (directory / STATE_SECRET).chmod(0o600)
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
    return f'[state]\nurl = "{url}"\npassword_file = "{STATE_SECRET}"\n'


def state_conninfo(directory: Path) -> str | None:
    """The PostgreSQL connection string (password included) of the config in `directory`, or None when
    its state is the SQLite file."""
    with open(directory / "mailrelay.toml", "rb") as file:
        state = tomllib.load(file).get("state", {})
    if "url" not in state:
        return None
    from psycopg.conninfo import make_conninfo

    password = (directory / state["password_file"]).read_text(encoding="utf-8").strip()
    return make_conninfo(state["url"], password=password)


def open_state_of(directory: Path, read_only: bool = True) -> Store:
    """The store of the config in `directory`, whichever kind it is; the caller closes it."""
    return open_store(state_conninfo(directory) or directory / STATE_FILE, read_only=read_only)


def query_state(directory: Path, statement: str) -> list[tuple]:
    """One SQL statement (the same text for both kinds: no parameters) on the state of the config in
    `directory`, committed; the rows it returned, as tuples."""
    conninfo = state_conninfo(directory)
    if conninfo is None:
        with contextlib.closing(sqlite3.connect(directory / STATE_FILE)) as db, db:
            return db.execute(statement).fetchall()
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as db:
        cursor = db.execute(statement)
        return cursor.fetchall() if cursor.description else []


def closed_port() -> int:
    """A loopback port nothing listens on (the OS just handed it out and took it back)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def once(config: Path) -> int:
    """One poll through the real command-line entry point; returns its exit code."""
    return main(["--config", str(config), "once"])


def audit_events(directory: Path) -> list[tuple[int | None, str, dict]]:
    rows = query_state(directory, "SELECT mail_id, event, detail FROM events ORDER BY id")
    return [(mail_id, event, json.loads(detail)) for mail_id, event, detail in rows]


def mail_states(directory: Path) -> list[tuple[str, str | None, str | None]]:
    return query_state(directory, "SELECT state, route, archived_to FROM mails ORDER BY id")


def make_retries_due(directory: Path) -> None:
    """Move every waiting mail's next attempt into the past, as if its backoff had run out."""
    query_state(directory, "UPDATE mails SET next_attempt = '2000-01-01T00:00:00.000+00:00' WHERE state = 'retry'")


def without_crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def forwards(sink) -> list:
    """What the sink received, without the relay's quarantine notes to the editors."""
    return [received for received in sink.received if b".alert@" not in received.data.split(b"\r\n\r\n", 1)[0]]


def alerts(sink) -> list:
    return [received for received in sink.received if received not in forwards(sink)]


def routing_with(directory: Path, quarantine_domain: str | None = None, review_below: float | None = None) -> Path:
    """The shipped routing file in `directory`, with a first rule holding back one sender domain, or another
    review threshold."""
    text = (REPO / "config" / "routing.toml").read_text(encoding="utf-8")
    if review_below is not None:
        text = text.replace("review_below_confidence = 0.45", f"review_below_confidence = {review_below}")
    if quarantine_domain:
        text = text.replace("[[rules]]", f'[[rules]]\nname = "hold-{quarantine_domain}"\nwhen = {{ domain = '
                                         f'"{quarantine_domain}" }}\ndesk = "quarantine"\nreason = "von Hand prüfen"'
                                         "\n\n[[rules]]", 1)
    path = directory / "routing.toml"
    path.write_text(text, encoding="utf-8")
    return path
