"""Running the relay against the test servers: a config writer and a `once` runner."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from mailrelay.cli import main
from tests.helpers import REPO

RELAY_ADDRESS = "relay@clusterplattform.example"


def write_config(directory: Path, dovecot, user: str, sink=None, *, smtp: str | None = None,
                 imap_port: int | None = None, templates: Path | None = None, rules: Path | None = None,
                 schedule: str = "retry_min_seconds = 0") -> Path:
    """A main config pointing at the test Dovecot (TLS, verified) and the SMTP sink (plain, loopback);
    by default a deferred mail is due again at once, so a test's next poll retries it."""
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

[state]
path = "state.sqlite"

[schedule]
{schedule}
"""
    path = directory / "mailrelay.toml"
    path.write_text(text, encoding="utf-8")
    return path


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
    with sqlite3.connect(directory / "state.sqlite") as db:
        rows = db.execute("SELECT mail_id, event, detail FROM events ORDER BY id").fetchall()
    return [(mail_id, event, json.loads(detail)) for mail_id, event, detail in rows]


def mail_states(directory: Path) -> list[tuple[str, str | None, str | None]]:
    with sqlite3.connect(directory / "state.sqlite") as db:
        return db.execute("SELECT state, route, archived_to FROM mails ORDER BY id").fetchall()


def make_retries_due(directory: Path) -> None:
    """Move every waiting mail's next attempt into the past, as if its backoff had run out."""
    with sqlite3.connect(directory / "state.sqlite") as db:
        db.execute("UPDATE mails SET next_attempt = '2000-01-01T00:00:00.000+00:00' WHERE state = 'retry'")


def without_crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def forwards(sink) -> list:
    """What the sink received, without the relay's quarantine notes to the editors."""
    return [received for received in sink.received if b".alert@" not in received.data.split(b"\r\n\r\n", 1)[0]]


def alerts(sink) -> list:
    return [received for received in sink.received if received not in forwards(sink)]
